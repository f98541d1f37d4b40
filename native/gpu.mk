# GPU host helpers: the tile hand-out order's libFuzzer target (its results are checked against
# the Python twin by tests/test_gpu_tile_order.py).
FUZZERS += fuzz_tile_order

$(OUT)/fuzz_tile_order: fuzz/fuzz_tile_order.c tile_order.c tile_order.h
	@mkdir -p $(OUT)
	$(CLANG) -std=gnu11 -g -O1 -Wall -Wextra -Werror -I. -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ fuzz/fuzz_tile_order.c tile_order.c
