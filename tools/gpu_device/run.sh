#!/bin/bash
# One device call: set up Vulkan + wheels, build the CPU codec, check correctness, benchmark.
set -u
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/work/main/.carry/py:/tmp/site PYTHONUNBUFFERED=1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
cd .carry
mkdir -p py/dsd/codec && cp codec/dsd_codec/*.py py/dsd/codec/
gcc -O3 -std=gnu11 -shared -fPIC -fvisibility=hidden -Icodec/native $(python3-config --includes) codec/native/*.c -o py/dsd/_native$(python3-config --extension-suffix) -lpthread 2>&1 | tail -5
python3 -c "from dsd.codec import gdeflate; print('cpu codec ok', len(gdeflate.compress(b'x'*100000)))"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
timeout 100 python3 check_conformance.py 2>&1 | tee $OUT/check_conformance.log
# A/B runs (needs the extra .spv builds, see README): timeout 220 python3 variants.py 2>&1 | tee $OUT/variants.log
timeout 230 python3 -m dsd bench gpu --mib 512 --repeat 4 --json > $OUT/bench.json 2> $OUT/bench.err; echo "bench rc=$?"
tail -5 $OUT/bench.err; cat $OUT/bench.json
timeout 120 python3 -m dsd bench gpu --mib 512 --repeat 5 2>&1 | tee $OUT/bench-text.log
