// Rotary position embedding (NeoX / Llama layout: dims i and i + D/2 rotate together).
//   q: [T, Hq, D], k: [T, Hk, D] (token stride q_stride/k_stride elements, heads packed),
//   cos, sin: [T, D] float32 rows already gathered at each token's position (Llama-3
//   frequency scaling is baked into them), q_out: [T, Hq, D], k_out: [T, Hk, D] contiguous.
//   For i < D/2, with c = T(cos), s = T(sin) and every product rounded to T as in torch:
//     out[i]       = T(T(x[i] * c[i])             + T(-x[i + D/2] * s[i]))
//     out[i + D/2] = T(T(x[i + D/2] * c[i + D/2]) + T(x[i] * s[i + D/2]))
// Grid: T blocks; block: 128 threads over (Hq + Hk) * D/2 pairs.
#include "common.cuh"
using namespace halyard;

template <typename T>
__device__ __forceinline__ void rotate_pair(const T* x, T* y, const float* c, const float* s, int i, int half) {
  const float a = to_f32(x[i]), b = to_f32(x[i + half]);
  const float c0 = round_to<T>(c[i]), s0 = round_to<T>(s[i]);
  const float c1 = round_to<T>(c[i + half]), s1 = round_to<T>(s[i + half]);
  y[i] = from_f32<T>(round_to<T>(a * c0) + round_to<T>(-b * s0));
  y[i + half] = from_f32<T>(round_to<T>(b * c1) + round_to<T>(a * s1));
}

template <typename T>
__device__ void rotary_token(const T* __restrict__ q, const T* __restrict__ k, const float* __restrict__ cos,
                             const float* __restrict__ sin, T* __restrict__ q_out, T* __restrict__ k_out,
                             int Hq, int Hk, int D, long long q_stride, long long k_stride) {
  const long long t = blockIdx.x;
  const int half = D / 2;
  const float* c = cos + t * D;
  const float* s = sin + t * D;
  for (int p = threadIdx.x; p < (Hq + Hk) * half; p += blockDim.x) {
    const int head = p / half, i = p % half;
    if (head < Hq) {
      rotate_pair<T>(q + t * q_stride + head * D, q_out + (t * Hq + head) * D, c, s, i, half);
    } else {
      const int hk = head - Hq;
      rotate_pair<T>(k + t * k_stride + hk * D, k_out + (t * Hk + hk) * D, c, s, i, half);
    }
  }
}

#define ROTARY(NAME, T)                                                                           \
  extern "C" __global__ void NAME(const T* q, const T* k, const float* cos, const float* sin,     \
                                  T* q_out, T* k_out, int Hq, int Hk, int D, long long q_stride, \
                                  long long k_stride) {                                           \
    rotary_token<T>(q, k, cos, sin, q_out, k_out, Hq, Hk, D, q_stride, k_stride);                 \
  }
ROTARY(rotary_f16, __half)
ROTARY(rotary_bf16, __nv_bfloat16)
