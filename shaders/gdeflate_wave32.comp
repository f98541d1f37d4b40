#version 460
// GDeflate decode, fast path: each 32-wide subgroup decodes one tile (needs subgroup size 32).
// Vulkan memory model: the output only needs to be coherent within the subgroup.
#pragma use_vulkan_memory_model
#extension GL_KHR_memory_scope_semantics : require
#extension GL_GOOGLE_include_directive : require
#define DSD_WAVE32 1
#define OUT_QUALIFIER subgroupcoherent
#include "gdeflate_decode.glsl"
