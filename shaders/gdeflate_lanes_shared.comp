#version 460
// GDeflate decode, portable path: a 32-invocation workgroup emulates the 32 lanes through shared
// memory, for devices whose subgroup size is not 32 (lavapipe: 8, many AMD parts: 64).
#extension GL_GOOGLE_include_directive : require
#include "gdeflate_decode.glsl"
