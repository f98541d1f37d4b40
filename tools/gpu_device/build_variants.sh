#!/bin/bash
# Builds the A/B variants of the wave32 shader into $1 (default .carry/wt/dsd/shaders), here,
# before a device call (the device has no glslangValidator). Each line: name, then -D knobs (none:
# the default build again, to see the drift within one run)
# (docs/benchmarks.md, "What limits the shader", says what each one does and what it measured).
# Since run 17 the wave32 default walks one Huffman table per round (DSD_ONE_DECODE's code):
# builds measured before it carry -DDSD_TWO_DECODES so they stay the SPIR-V that was measured.
set -eu
out=${1:-.carry/wt/dsd/shaders}
while read -r name flags; do
    [ -z "$name" ] && continue
    glslangValidator --target-env vulkan1.2 -V $flags shaders/gdeflate_wave32.comp -o "$out/$name.spv" >/dev/null
done <<'LIST'
gdeflate_wave32_serialtables -DDSD_SERIAL_TABLES -DDSD_TWO_DECODES
gdeflate_wave32_fixedbuild -DDSD_FIXED_BY_BUILD -DDSD_TWO_DECODES
gdeflate_wave32_nounroll -DDSD_TABLE_NO_UNROLL -DDSD_TWO_DECODES
gdeflate_wave32_g2 -DSOLO_GROUP=2 -DDSD_TWO_DECODES
gdeflate_wave32_g1 -DSOLO_GROUP=1 -DDSD_TWO_DECODES
gdeflate_wave32_ss -DDSD_STATE_SHARED -DDSD_TWO_DECODES
gdeflate_wave32_ss_g2 -DDSD_STATE_SHARED -DSOLO_GROUP=2 -DDSD_TWO_DECODES
gdeflate_wave32_ss_nounroll -DDSD_STATE_SHARED -DDSD_TABLE_NO_UNROLL -DDSD_TWO_DECODES
gdeflate_wave32_s2 -DWAVE_SLOTS=2 -DDSD_TWO_DECODES
gdeflate_wave32_words -DDSD_SOLO_WORDS -DDSD_TWO_DECODES
gdeflate_wave32_words2 -DDSD_SOLO_WORDS -DSOLO_WORD_GROUP=2 -DDSD_TWO_DECODES
gdeflate_wave32_words8 -DDSD_SOLO_WORDS -DSOLO_WORD_GROUP=8 -DDSD_TWO_DECODES
gdeflate_wave32_coop -DDSD_COOP_WORDS -DDSD_TWO_DECODES
gdeflate_wave32_wc -DDSD_SOLO_WORDS -DDSD_COOP_WORDS -DDSD_TWO_DECODES
gdeflate_wave32_wc128 -DDSD_SOLO_WORDS -DDSD_COOP_WORDS -DSOLO_MAX_LEN=128u -DDSD_TWO_DECODES
gdeflate_wave32_wc32 -DDSD_SOLO_WORDS -DDSD_COOP_WORDS -DSOLO_MAX_LEN=32u -DDSD_TWO_DECODES
gdeflate_wave32_ahead -DDSD_REFILL_AHEAD -DDSD_TWO_DECODES
gdeflate_wave32_wca -DDSD_SOLO_WORDS -DDSD_COOP_WORDS -DDSD_REFILL_AHEAD -DDSD_TWO_DECODES
gdeflate_wave32_wca128 -DDSD_SOLO_WORDS -DDSD_COOP_WORDS -DDSD_REFILL_AHEAD -DSOLO_MAX_LEN=128u -DDSD_TWO_DECODES
gdeflate_wave32_wca_s2 -DDSD_SOLO_WORDS -DDSD_COOP_WORDS -DDSD_REFILL_AHEAD -DWAVE_SLOTS=2 -DDSD_TWO_DECODES
gdeflate_wave32_again -DDSD_TWO_DECODES
gdeflate_wave32_flat -DDSD_FLAT_COPY -DDSD_TWO_DECODES
gdeflate_wave32_flat1 -DDSD_FLAT_COPY -DFLAT_UNROLL=1 -DDSD_TWO_DECODES
gdeflate_wave32_flat4 -DDSD_FLAT_COPY -DFLAT_UNROLL=4 -DDSD_TWO_DECODES
gdeflate_wave32_flat_258 -DDSD_FLAT_COPY -DSOLO_MAX_LEN=258u -DDSD_TWO_DECODES
gdeflate_wave32_flat4_258 -DDSD_FLAT_COPY -DFLAT_UNROLL=4 -DSOLO_MAX_LEN=258u -DDSD_TWO_DECODES
gdeflate_wave32_flat_16 -DDSD_FLAT_COPY -DSOLO_MAX_LEN=16u -DDSD_TWO_DECODES
gdeflate_wave32_one -DDSD_ONE_COPY_SITE -DDSD_TWO_DECODES
gdeflate_wave32_one_flat -DDSD_ONE_COPY_SITE -DDSD_FLAT_COPY -DDSD_TWO_DECODES
gdeflate_wave32_one_flat4_258 -DDSD_ONE_COPY_SITE -DDSD_FLAT_COPY -DFLAT_UNROLL=4 -DSOLO_MAX_LEN=258u -DDSD_TWO_DECODES
gdeflate_wave32_od -DDSD_ONE_DECODE
gdeflate_wave32_twodec -DDSD_TWO_DECODES
gdeflate_wave32_lut -DDSD_LUT -DDSD_TWO_DECODES
gdeflate_wave32_lut16_10 -DDSD_LUT -DDSD_LUT16 -DLUT_LITLEN_BITS=10u -DDSD_TWO_DECODES
gdeflate_wave32_lut16_11 -DDSD_LUT -DDSD_LUT16 -DLUT_LITLEN_BITS=11u -DLUT_DIST_BITS=9u -DDSD_TWO_DECODES
gdeflate_wave32_od_lut -DDSD_ONE_DECODE -DDSD_LUT
gdeflate_wave32_od_lut16_10 -DDSD_ONE_DECODE -DDSD_LUT -DDSD_LUT16 -DLUT_LITLEN_BITS=10u
gdeflate_wave32_od_lut16_11 -DDSD_ONE_DECODE -DDSD_LUT -DDSD_LUT16 -DLUT_LITLEN_BITS=11u -DLUT_DIST_BITS=9u
gdeflate_wave32_od_one -DDSD_ONE_DECODE -DDSD_ONE_COPY_SITE
gdeflate_wave32_od_one_lut16_10 -DDSD_ONE_DECODE -DDSD_ONE_COPY_SITE -DDSD_LUT -DDSD_LUT16 -DLUT_LITLEN_BITS=10u
gdeflate_wave32_od_again
gdeflate_wave32_oe -DDSD_ONE_EXTRA
gdeflate_wave32_oe_one -DDSD_ONE_EXTRA -DDSD_ONE_COPY_SITE
gdeflate_wave32_s4 -DDSD_SEARCH4
gdeflate_wave32_s4r -DDSD_SEARCH4 -DDSD_SEARCH4_REG
gdeflate_wave32_s16 -DDSD_SEARCH4 -DDSD_SEARCH16
gdeflate_wave32_ov -DDSD_ONE_VALUE
gdeflate_wave32_sc -DDSD_SCAN_ONCE
gdeflate_wave32_wf -DDSD_WORD_FAST
gdeflate_wave32_ov_sc -DDSD_ONE_VALUE -DDSD_SCAN_ONCE
gdeflate_wave32_ov_sc_wf -DDSD_ONE_VALUE -DDSD_SCAN_ONCE -DDSD_WORD_FAST
LIST
