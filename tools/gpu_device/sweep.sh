#!/bin/bash
# One device call for an A/B sweep (runs 16-17, branch shader2; layout as run.sh: .carry/wt with the
# variants from build_variants.sh): variants.py on every build in VARIANTS (default: run 17's list;
# "gdeflate_wave32_twodec" is run 17's "gdeflate_wave32" since the default changed), then the
# fastest on the game corpus through check_conformance.py (WAVE32_SPV) and dsd bench gpu with
# nvCOMP in the same process, beside the bench of the current default. Logs go to $OUT.
set -u
source .carry/wt/tools/gpu_device/setup.sh
sha256sum dsd/shaders/*.spv > $OUT/spv.sha256
V="gdeflate_wave32_twodec:4 gdeflate_wave32_od:4 gdeflate_wave32_lut:4 gdeflate_wave32_lut16_10:4 gdeflate_wave32_lut16_11:4 gdeflate_wave32_od_lut:4 gdeflate_wave32_od_lut16_10:4 gdeflate_wave32_od_lut16_11:4 gdeflate_wave32_od_one:4 gdeflate_wave32_od_one_lut16_10:4 gdeflate_wave32_od_again:4"
VARIANTS="${VARIANTS:-$V}" CONF=$C/conf timeout 260 python3 tools/gpu_device/variants.py 2>&1 | tee $OUT/variants.log
best=$(python3 - $OUT/variants.log <<'PY'
import sys, re
best = None
for l in open(sys.argv[1]):
    m = re.match(r"\s+(\S+):4\s+conf\s+([\d.]+)\s+game\s+([\d.]+)$", l.rstrip())
    if m and "again" not in m.group(1) and (best is None or float(m.group(3)) > best[1]):
        best = (m.group(1), float(m.group(3)))
print(best[0] if best else "gdeflate_wave32")
PY
)
echo "winner on the game corpus: $best"
WAVE32_SPV=$best timeout 90 python3 tools/gpu_device/check_conformance.py $C/conf 2>&1 | tee $OUT/check_conformance.log
timeout 110 python3 -m dsd bench gpu --mib 512 --repeat 5 --json > $OUT/bench_default.out 2> $OUT/bench_default.err; echo "bench default rc=$?"; cat $OUT/bench_default.out
if [ "$best" != gdeflate_wave32 ]; then
  DSD_GPU_SPV=$best:4 timeout 110 python3 -m dsd bench gpu --mib 512 --repeat 5 --json > $OUT/bench_best.out 2> $OUT/bench_best.err; echo "bench $best rc=$?"; cat $OUT/bench_best.out
fi
