#version 460
// GDeflate decode, fast path for devices without the Vulkan memory model: as
// gdeflate_wave32.comp, with a device-coherent output buffer.
#extension GL_GOOGLE_include_directive : require
#define DSD_WAVE32 1
#include "gdeflate_decode.glsl"
