#!/bin/bash
# One device call, from a copy of the worktree carried as .carry/wt (tracked files; the device
# ships only the main checkout): set up Vulkan + wheels, build dsd._native there (Python 3.12,
# liburing/libzstd from .carry/sys), then check correctness, measure the dispatch overhead, run
# the benchmark and the GPU handoff tests on the NVIDIA driver. Logs go to $OUT.
set -u
source .carry/wt/tools/gpu_device/setup.sh
python3 -c "from dsd.codec import gdeflate; from dsd._native import VkSubmitter, IoEngine; print('native ok', len(gdeflate.compress(b'x'*100000)))"
sha256sum dsd/shaders/*.spv | tee $OUT/spv.sha256
timeout 90 python3 tools/gpu_device/check_conformance.py $C/conf 2>&1 | tee $OUT/check_conformance.log
[ "${DISPATCH:-1}" = 1 ] && timeout 120 python3 tools/gpu_device/dispatch.py 2>&1 | tee $OUT/dispatch.log
# The GPU handoff end to end: the real daemon decodes into an exportable buffer, this process's own
# VkDevice imports the fd (dsd.client.vkimport) and reads it back (tests/test_gpu_handoff.py).
timeout 120 python3 -m pytest -q -W default -p no:cacheprovider -o addopts= tests/test_gpu_handoff.py 2>&1 | tee $OUT/handoff_tests.log | tail -15
[ "${HANDOFF_BENCH:-1}" = 1 ] && timeout 60 python3 tools/handoff_bench.py --repeat 9 2>&1 | tee $OUT/handoff_bench.log | tail -12
timeout 220 python3 -m dsd bench gpu --mib 512 --repeat 5 ${BENCH_ARGS:---json} > $OUT/bench.out 2> $OUT/bench.err; echo "bench rc=$?"
tail -3 $OUT/bench.err; cat $OUT/bench.out
