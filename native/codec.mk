# GDeflate codec: native round-trip/corpus test (ASan+UBSan) and the decoder's libFuzzer target.
TESTS += test_gdeflate test_gdeflate_avx2 test_gdeflate_scalar test_gdeflate_generic test_gdeflate_builds
FUZZERS += fuzz_gdeflate_decompress

GDEFLATE_SRC := gdeflate_decompress.c gdeflate_compress.c
GDEFLATE_DEPS := $(GDEFLATE_SRC) gdeflate.h gdeflate_internal.h

$(OUT)/test_gdeflate: tests/test_gdeflate.c $(GDEFLATE_DEPS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS_TEST) -o $@ tests/test_gdeflate.c $(GDEFLATE_SRC) -lpthread

# the same tests on the AVX2 rounds (what CPUs without AVX-512 run), where the CPU has AVX2
$(OUT)/test_gdeflate_avx2: tests/test_gdeflate.c $(GDEFLATE_DEPS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS_TEST) -DGD_DISABLE_AVX512 -o $@ tests/test_gdeflate.c $(GDEFLATE_SRC) -lpthread

# the same tests on the scalar round loop (what CPUs with BMI2 but no AVX2 run)
$(OUT)/test_gdeflate_scalar: tests/test_gdeflate.c $(GDEFLATE_DEPS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS_TEST) -DGD_DISABLE_AVX512 -DGD_DISABLE_AVX2 -o $@ tests/test_gdeflate.c $(GDEFLATE_SRC) -lpthread

# the same tests on the decoder's generic (non-BMI2) build, which x86-64 CI machines never pick
$(OUT)/test_gdeflate_generic: tests/test_gdeflate.c $(GDEFLATE_DEPS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS_TEST) -DGD_DISABLE_BMI2 -o $@ tests/test_gdeflate.c $(GDEFLATE_SRC) -lpthread

# every build of the tile decoder against the generic one on real, cut, resized and bit-flipped tiles
$(OUT)/test_gdeflate_builds: tests/test_gdeflate_builds.c $(GDEFLATE_DEPS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS_TEST) -o $@ tests/test_gdeflate_builds.c $(GDEFLATE_SRC) -lpthread

$(OUT)/fuzz_gdeflate_decompress: fuzz/fuzz_gdeflate_decompress.c $(GDEFLATE_DEPS)
	@mkdir -p $(OUT)
	$(CLANG) -std=gnu11 -g -O1 -Wall -Wextra -Werror -I. -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ fuzz/fuzz_gdeflate_decompress.c $(GDEFLATE_SRC) -lpthread
