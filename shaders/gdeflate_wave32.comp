#version 460
// GDeflate decode, fast path: each 32-wide subgroup decodes one tile (needs subgroup size 32).
#extension GL_GOOGLE_include_directive : require
#define DSD_WAVE32 1
#include "gdeflate_decode.glsl"
