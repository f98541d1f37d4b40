# io engine, engine side of DirectStorage queue semantics (writes, fsync, MEMORY sources,
# compressed requests through the codec pool and the staging arena). Adds the codec stage to the
# io engine's sources (so the io test and fuzzer link it too) and its own ASan/UBSan test.
# Included after io.mk (alphabetical), so IO_SRCS/LDLIBS reach io.mk's recipes, which expand late.
OPS_SRCS := io_codec.c io_staging.c gdeflate_decompress.c gdeflate_compress.c
OPS_HDRS := io_staging.h gdeflate.h gdeflate_internal.h
IO_SRCS += $(OPS_SRCS)
IO_HDRS += $(OPS_HDRS)
LDLIBS += -lzstd

$(OUT)/test_io_engine: $(OPS_SRCS) $(OPS_HDRS)
$(OUT)/fuzz_io_records: $(OPS_SRCS) $(OPS_HDRS)

TESTS += test_io_ops

$(OUT)/test_io_ops: tests/test_io_ops.c $(IO_SRCS) $(IO_HDRS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS_TEST) -o $@ tests/test_io_ops.c $(IO_SRCS) $(LDLIBS)
