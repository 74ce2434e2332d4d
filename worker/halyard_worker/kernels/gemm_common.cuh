// Shared pieces of the weight-only GEMMs (w8a16_gemm.cu, w4a16_gemm.cu).
// A warp owns ROWS output channels and MT batch rows: acc[m][r] holds its lane's partial
// dot product of x[m0 + m] with weight row n0 + r.
#pragma once
#include "common.cuh"

namespace halyard {

constexpr int GEMM_WARPS = 4;  // warps per block
constexpr int GEMM_ROWS = 4;   // output channels per warp

template <int MT>
__device__ __forceinline__ void zero_tile(float (&acc)[MT][GEMM_ROWS]) {
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) acc[m][r] = 0.f;
}

// Sum each accumulator over the warp; lane (m * ROWS + r) % 32 stores
//   y[m0 + m, n0 + r] = T(sum * scale[n] + bias[n])   (scale, bias may be null).
template <typename T, int MT>
__device__ __forceinline__ void store_tile(float (&acc)[MT][GEMM_ROWS], const T* scale, const T* bias, T* y,
                                           int m0, int n0, int M, int N) {
  const int lane = threadIdx.x % WARP;
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < GEMM_ROWS; ++r) {
      const float total = warp_sum(acc[m][r]);
      const int n = n0 + r;
      if (lane == (m * GEMM_ROWS + r) % WARP && m0 + m < M && n < N) {
        float v = scale != nullptr ? total * to_f32(scale[n]) : total;
        if (bias != nullptr) v += to_f32(bias[n]);
        y[(long long)(m0 + m) * N + n] = from_f32<T>(v);
      }
    }
}

}  // namespace halyard
