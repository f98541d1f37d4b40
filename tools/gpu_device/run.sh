#!/bin/bash
# One device call: set up Vulkan + wheels, build the CPU codec and the Vulkan submit helper, check
# correctness, measure the dispatch overhead, time the A/B builds, run the benchmark.
set -u
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/.carry/py:/tmp/site PYTHONUNBUFFERED=1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
cd .carry
mkdir -p py/dsd/codec && cp codec/dsd_codec/*.py py/dsd/codec/
# dsd._native without the io engine (liburing is not on the device): codec + VkSubmitter.
gcc -O3 -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers -shared -fPIC -fvisibility=hidden \
    -Icodec/native $(python3-config --includes) codec/native/*.c -o py/dsd/_native$(python3-config --extension-suffix) -lpthread 2>&1 | tail -5
python3 -c "from dsd.codec import gdeflate; from dsd._native import VkSubmitter; print('cpu codec + VkSubmitter ok', len(gdeflate.compress(b'x'*100000)))"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
echo "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
python3 -c "import time; t=time.perf_counter(); [time.perf_counter() for _ in range(100000)]; print('perf_counter: %.0f ns a call' % ((time.perf_counter()-t)*1e4))"
sha256sum py/dsd/shaders/*.spv > $OUT/spv.sha256
timeout 100 python3 check_conformance.py 2>&1 | tee $OUT/check_conformance.log
# GPU clocks sampled while the small batches run (they may not hold the clock up).
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,utilization.gpu --format=csv -lms 100 > $OUT/clocks.log 2>&1 &
smi=$!
[ "${DISPATCH:-1}" = 1 ] && timeout 120 python3 dispatch.py 2>&1 | tee $OUT/dispatch.log
kill $smi
[ -n "${VARIANTS:-}" ] && timeout 230 python3 variants.py 2>&1 | tee $OUT/variants.log
# The fastest correct build on the game corpus, when it is not the default, gets a bench run too.
best=$(awk '/^summary/{s=1;next} s && !/WRONG/ && NF == 5 {print $5, $1}' $OUT/variants.log 2>/dev/null | sort -rn | head -1 | cut -d' ' -f2)
if [ -n "$best" ] && [ "$best" != "gdeflate_wave32:4" ]; then
    echo "bench with the fastest build: $best"
    DSD_GPU_SPV=$best timeout 200 python3 -m dsd bench gpu --mib 512 --repeat 4 --json > $OUT/bench_best.out 2>&1; cat $OUT/bench_best.out
fi
timeout 200 python3 -m dsd bench gpu --mib 512 --repeat 4 ${BENCH_ARGS:---json} > $OUT/bench.out 2> $OUT/bench.err; echo "bench rc=$?"
tail -3 $OUT/bench.err; cat $OUT/bench.out
