# io engine: its C API driven against pread() under ASan/UBSan (both backends), and a libFuzzer
# target for the request-record parser.
IO_SRCS := io_engine.c io_registry.c io_posix.c io_uring.c io_probe.c io_slots.c io_sync.c io_mapped.c fault_guard.c
IO_HDRS := io_engine.h io_backend.h io_registry.h io_slots.h io_mapped.h fault_guard.h dsd_wire.h tests/io_test_wait.h

TESTS += test_io_engine
TESTS += test_fault_guard

$(OUT)/test_fault_guard: tests/test_fault_guard.c fault_guard.c fault_guard.h
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS_TEST) -o $@ tests/test_fault_guard.c fault_guard.c $(LDLIBS)

$(OUT)/test_io_engine: tests/test_io_engine.c $(IO_SRCS) $(IO_HDRS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS_TEST) -o $@ tests/test_io_engine.c $(IO_SRCS) $(LDLIBS)

FUZZERS += fuzz_io_records

$(OUT)/fuzz_io_records: fuzz/fuzz_io_records.c $(IO_SRCS) $(IO_HDRS)
	@mkdir -p $(OUT)
	$(CLANG) -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-missing-field-initializers -I. \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $@ fuzz/fuzz_io_records.c $(IO_SRCS) $(LDLIBS)
