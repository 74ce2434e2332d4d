// Shared device helpers for Halyard's kernels (compiled with NVRTC).
// Element types: __half (fp16) and __nv_bfloat16 (bf16); all math in fp32.
// A "pack" is 8 elements = 16 bytes = one 128-bit load (uint4).
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>

namespace halyard {

constexpr int WARP = 32;
constexpr int PACK = 8;  // elements per 128-bit load of a 16-bit type

__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Round through T (emulates one torch op computed in T).
template <typename T> __device__ __forceinline__ float round_to(float v) { return to_f32(from_f32<T>(v)); }

__device__ __forceinline__ float2 pair_to_f32(unsigned int bits, __half) {
  return __half22float2(*reinterpret_cast<__half2*>(&bits));
}
__device__ __forceinline__ float2 pair_to_f32(unsigned int bits, __nv_bfloat16) {
  return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&bits));
}

// 8 elements of T (one uint4) -> 8 floats.
template <typename T> __device__ __forceinline__ void unpack8(const uint4& v, float out[PACK]) {
  const unsigned int w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 f = pair_to_f32(w[i], T());
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

// 8 floats -> 8 elements of T packed in one uint4.
template <typename T> __device__ __forceinline__ uint4 pack8(const float in[PACK]) {
  uint4 v;
  T* e = reinterpret_cast<T*>(&v);
#pragma unroll
  for (int i = 0; i < PACK; ++i) e[i] = from_f32<T>(in[i]);
  return v;
}

template <typename T> __device__ __forceinline__ uint4 load8(const T* p) {
  return *reinterpret_cast<const uint4*>(p);
}
// Read-only, streamed once (weights, KV): do not keep in L1.
__device__ __forceinline__ uint4 load_stream(const void* p) {
  return __ldg(reinterpret_cast<const uint4*>(p));
}
template <typename T> __device__ __forceinline__ void store8(T* p, const uint4& v) {
  *reinterpret_cast<uint4*>(p) = v;
}

__device__ __forceinline__ float warp_sum(float v, int width = WARP) {
#pragma unroll
  for (int off = width / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off, width);
  return v;
}
__device__ __forceinline__ float warp_max(float v, int width = WARP) {
#pragma unroll
  for (int off = width / 2; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off, width));
  return v;
}

// Sum over the whole block; `scratch` holds >= blockDim.x / 32 floats. All threads get the result.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, nwarps = blockDim.x / WARP;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.f;
  for (int i = 0; i < nwarps; ++i) total += scratch[i];
  return total;
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, nwarps = blockDim.x / WARP;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = __int_as_float(0xff800000u);  // -inf
  for (int i = 0; i < nwarps; ++i) m = fmaxf(m, scratch[i]);
  return m;
}

}  // namespace halyard
