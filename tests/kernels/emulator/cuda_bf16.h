// CPU stand-in for cuda_bf16.h (the emulator only): bfloat16 with round-to-nearest-even.
#pragma once
#include "cuda_emu.h"
struct __nv_bfloat16 { uint16_t bits; };
struct __nv_bfloat162 { __nv_bfloat16 x, y; };
inline float __bfloat162float(__nv_bfloat16 b) { uint32_t u = uint32_t(b.bits) << 16; float f; std::memcpy(&f, &u, 4); return f; }
inline __nv_bfloat16 __float2bfloat16_rn(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{uint16_t((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return __nv_bfloat16{uint16_t(u >> 16)};
}
inline float2 __bfloat1622float2(__nv_bfloat162 h) { return float2{__bfloat162float(h.x), __bfloat162float(h.y)}; }
inline __nv_bfloat162 __hsub2(__nv_bfloat162 a, __nv_bfloat162 b) {
  return __nv_bfloat162{__float2bfloat16_rn(__bfloat162float(a.x) - __bfloat162float(b.x)),
                        __float2bfloat16_rn(__bfloat162float(a.y) - __bfloat162float(b.y))};
}
inline __nv_bfloat162 __hfma2(__nv_bfloat162 a, __nv_bfloat162 b, __nv_bfloat162 c) {  // one rounding per lane
  return __nv_bfloat162{
      __float2bfloat16_rn(float(std::fma(double(__bfloat162float(a.x)), __bfloat162float(b.x), __bfloat162float(c.x)))),
      __float2bfloat16_rn(float(std::fma(double(__bfloat162float(a.y)), __bfloat162float(b.y), __bfloat162float(c.y))))};
}
inline __nv_bfloat162 __hmul2(__nv_bfloat162 a, __nv_bfloat162 b) {
  return __nv_bfloat162{__float2bfloat16_rn(__bfloat162float(a.x) * __bfloat162float(b.x)), __float2bfloat16_rn(__bfloat162float(a.y) * __bfloat162float(b.y))};
}
