// CPU stand-in for cuda_fp16.h (the emulator only): __half as IEEE binary16 via _Float16.
#pragma once
#include "cuda_emu.h"
struct __half { uint16_t bits; };
struct __half2 { __half x, y; };
inline float __half2float(__half h) { _Float16 f; std::memcpy(&f, &h.bits, 2); return float(f); }
inline __half __float2half_rn(float v) { _Float16 f = _Float16(v); __half h; std::memcpy(&h.bits, &f, 2); return h; }
inline float2 __half22float2(__half2 h) { return float2{__half2float(h.x), __half2float(h.y)}; }
inline __half2 __hsub2(__half2 a, __half2 b) {
  return __half2{__float2half_rn(__half2float(a.x) - __half2float(b.x)), __float2half_rn(__half2float(a.y) - __half2float(b.y))};
}
inline __half2 __hfma2(__half2 a, __half2 b, __half2 c) {  // one rounding to fp16 per lane, as the hardware
  return __half2{__float2half_rn(float(std::fma(double(__half2float(a.x)), __half2float(b.x), __half2float(c.x)))),
                 __float2half_rn(float(std::fma(double(__half2float(a.y)), __half2float(b.y), __half2float(c.y))))};
}
inline __half2 __hmul2(__half2 a, __half2 b) {
  return __half2{__float2half_rn(__half2float(a.x) * __half2float(b.x)), __float2half_rn(__half2float(a.y) * __half2float(b.y))};
}
