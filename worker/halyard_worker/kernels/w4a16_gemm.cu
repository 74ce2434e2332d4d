// Weight-only int4 GEMM, group-wise scales (and zeros), for decode-sized batches (M = 1..64).
//   x: [M, K] fp16/bf16, qweight: [N, K/2] uint8, two weights per byte, low nibble = even k
//   scale, zero: [N, K/G] (same dtype as x; zero null = symmetric, zero point 8), bias: [N] or null
//   w[n, k] = (q[n, k] - zero[n, k/G]) * scale[n, k/G];  y = T(x @ w^T + bias)   (fp32 accumulation)
// Each lane reads 16 bytes = 32 weights of one row per step (one group, since G % 32 == 0),
// so a warp streams 512 contiguous bytes per row per step. Per 8-weight slice:
//   acc[m][r] += scale * (sum_i q_i x_i - zero * sum_i x_i)
// Grid: (ceil(M / MT), ceil(N / (WARPS * ROWS))); block: WARPS * 32 threads; K % G == 0, G % 32 == 0.
#include "gemm_common.cuh"
using namespace halyard;

namespace {
constexpr int WARPS = GEMM_WARPS;
constexpr int ROWS = GEMM_ROWS;
constexpr int KLANE = 32;      // int4 weights per lane per step (one uint4 of packed bytes)

// Nibble i (0..7) of `word` -> float, without I2F: 0x4B00000q is 2^23 + q as fp32.
__device__ __forceinline__ float u4_to_f32(unsigned int word, int i) {
  return __uint_as_float(((word >> (4 * i)) & 0xFu) | 0x4B000000u) - 8388608.f;
}
}  // namespace

// One 32-weight lane step (a single group):
//   acc[m][r] += s[r] * (sum_i q[n0 + r, k + i] x[m0 + m, k + i] - z[r] * sum_i x[m0 + m, k + i]).
template <typename T, int MT>
__device__ __forceinline__ void accumulate_step(const uint4 (&wq)[ROWS], const float (&s)[ROWS],
                                                const float (&z)[ROWS], const T* x, int k, int m0, int M, int K,
                                                float (&acc)[MT][ROWS]) {
#pragma unroll
  for (int part = 0; part < 4; ++part) {  // 8 weights per part: one 32-bit word of each row
    float wf[ROWS][PACK];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const unsigned int word = part == 0 ? wq[r].x : part == 1 ? wq[r].y : part == 2 ? wq[r].z : wq[r].w;
#pragma unroll
      for (int i = 0; i < PACK; ++i) wf[r][i] = u4_to_f32(word, i);
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m0 + m >= M) break;
      float xf[PACK];
      unpack8<T>(load8(x + (long long)(m0 + m) * K + k + part * PACK), xf);
      float sx = 0.f;
#pragma unroll
      for (int i = 0; i < PACK; ++i) sx += xf[i];
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        float d = 0.f;
#pragma unroll
        for (int i = 0; i < PACK; ++i) d = fmaf(wf[r][i], xf[i], d);
        acc[m][r] = fmaf(s[r], d - z[r] * sx, acc[m][r]);
      }
    }
  }
}

template <typename T, int MT>
__device__ void w4a16_tile(const T* __restrict__ x, const unsigned char* __restrict__ w,
                           const T* __restrict__ scale, const T* __restrict__ zero, const T* __restrict__ bias,
                           T* __restrict__ y, int M, int N, int K, int G) {
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
  const int m0 = blockIdx.x * MT;
  const int n0 = (blockIdx.y * WARPS + warp) * ROWS;
  const int groups = K / G;
  float acc[MT][ROWS];
  zero_tile<MT>(acc);
  // Weights (and scales) of step k + STEP are loaded before step k is computed: two steps in flight.
  constexpr int STEP = WARP * KLANE;
  auto load_rows = [&](int kk, uint4 (&wd)[ROWS], float (&sd)[ROWS], float (&zd)[ROWS]) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const bool ok = kk < K && n0 + r < N;
      const long long g = (long long)(n0 + r) * groups + kk / G;
      wd[r] = ok ? load_stream(w + ((long long)(n0 + r) * K + kk) / 2) : make_uint4(0, 0, 0, 0);
      sd[r] = ok ? to_f32(scale[g]) : 0.f;
      zd[r] = (ok && zero != nullptr) ? to_f32(zero[g]) : 8.f;
    }
  };
  uint4 wq[ROWS];
  float s[ROWS], z[ROWS];
  load_rows(lane * KLANE, wq, s, z);
  for (int k = lane * KLANE; k < K; k += STEP) {
    uint4 next_w[ROWS];
    float next_s[ROWS], next_z[ROWS];
    load_rows(k + STEP, next_w, next_s, next_z);
    accumulate_step<T, MT>(wq, s, z, x, k, m0, M, K, acc);
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      wq[r] = next_w[r];
      s[r] = next_s[r];
      z[r] = next_z[r];
    }
  }
  store_tile<T, MT>(acc, static_cast<const T*>(nullptr), bias, y, m0, n0, M, N);
}

#define W4A16(NAME, T, MT)                                                                          \
  extern "C" __global__ void __launch_bounds__(WARPS * WARP)                                       \
      NAME(const T* x, const unsigned char* w, const T* scale, const T* zero, const T* bias, T* y,  \
           int M, int N, int K, int G) {                                                            \
    w4a16_tile<T, MT>(x, w, scale, zero, bias, y, M, N, K, G);                                      \
  }
W4A16(w4a16_f16_m1, __half, 1)
W4A16(w4a16_f16_m2, __half, 2)
W4A16(w4a16_f16_m4, __half, 4)
W4A16(w4a16_f16_m8, __half, 8)
W4A16(w4a16_bf16_m1, __nv_bfloat16, 1)
W4A16(w4a16_bf16_m2, __nv_bfloat16, 2)
W4A16(w4a16_bf16_m4, __nv_bfloat16, 4)
W4A16(w4a16_bf16_m8, __nv_bfloat16, 8)
