// Weight-only int8 GEMM for decode-sized batches (GEMV at M = 1, good to M = 64).
//   x: [M, K] fp16/bf16 (row stride K), w: [N, K] int8 (nn.Linear layout, row-major),
//   scale: [N] (same dtype as x, one per output channel), bias: [N] or null, y: [M, N]
//   y[m, n] = T(sum_k x[m, k] * w[n, k] * scale[n] + bias[n])   (fp32 accumulation)
// Each warp owns ROWS consecutive output channels and streams their weight rows once
// with 128-bit loads (16 int8 per lane, 512 contiguous bytes per row per warp step);
// activations come from L1/L2. A block owns WARPS * ROWS channels and MT batch rows;
// blockIdx.x walks the batch tiles so tiles sharing weights run together (L2 reuse).
// Grid: (ceil(M / MT), ceil(N / (WARPS * ROWS))); block: WARPS * 32 threads; K % 16 == 0.
#include "gemm_common.cuh"
using namespace halyard;

namespace {
constexpr int WARPS = GEMM_WARPS;
constexpr int ROWS = GEMM_ROWS;
constexpr int KLANE = 16;      // int8 weights per lane per step (one uint4)

// int8 byte i of `word` -> float, without I2F: 0x4B0000xx is 2^23 + xx as fp32.
__device__ __forceinline__ float i8_to_f32(unsigned int word, int i) {
  const unsigned int biased = __byte_perm(word ^ 0x80808080u, 0x4B000000u, 0x7440u | i);
  return __uint_as_float(biased) - 8388736.f;  // 2^23 + 128
}
}  // namespace

// One 16-weight lane step: acc[m][r] += sum_i w[n0 + r, k + i] * x[m0 + m, k + i].
template <typename T, int MT>
__device__ __forceinline__ void accumulate_step(const uint4 (&wq)[ROWS], const T* x, int k, int m0, int M, int K,
                                                float (&acc)[MT][ROWS]) {
#pragma unroll
  for (int part = 0; part < 2; ++part) {  // 8 weights per part: words (x, y) then (z, w)
    float wf[ROWS][PACK];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const unsigned int lo = part ? wq[r].z : wq[r].x, hi = part ? wq[r].w : wq[r].y;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        wf[r][i] = i8_to_f32(lo, i);
        wf[r][4 + i] = i8_to_f32(hi, i);
      }
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m0 + m >= M) break;
      float xf[PACK];
      unpack8<T>(load8(x + (long long)(m0 + m) * K + k + part * PACK), xf);
#pragma unroll
      for (int r = 0; r < ROWS; ++r)
#pragma unroll
        for (int i = 0; i < PACK; ++i) acc[m][r] = fmaf(wf[r][i], xf[i], acc[m][r]);
    }
  }
}

template <typename T, int MT>
__device__ void w8a16_tile(const T* __restrict__ x, const signed char* __restrict__ w, const T* __restrict__ scale,
                           const T* __restrict__ bias, T* __restrict__ y, int M, int N, int K) {
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
  const int m0 = blockIdx.x * MT;
  const int n0 = (blockIdx.y * WARPS + warp) * ROWS;
  float acc[MT][ROWS];
  zero_tile<MT>(acc);
  // Weights of step k + STEP are loaded before step k is computed: two steps in flight per warp.
  constexpr int STEP = WARP * KLANE;
  auto load_rows = [&](int kk, uint4 (&dst)[ROWS]) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r)
      dst[r] = (kk < K && n0 + r < N) ? load_stream(w + (long long)(n0 + r) * K + kk) : make_uint4(0, 0, 0, 0);
  };
  uint4 wq[ROWS];
  load_rows(lane * KLANE, wq);
  for (int k = lane * KLANE; k < K; k += STEP) {
    uint4 next[ROWS];
    load_rows(k + STEP, next);
    accumulate_step<T, MT>(wq, x, k, m0, M, K, acc);
#pragma unroll
    for (int r = 0; r < ROWS; ++r) wq[r] = next[r];
  }
  store_tile<T, MT>(acc, scale, bias, y, m0, n0, M, N);
}

#define W8A16(NAME, T, MT)                                                                        \
  extern "C" __global__ void __launch_bounds__(WARPS * WARP)                                     \
      NAME(const T* x, const signed char* w, const T* scale, const T* bias, T* y, int M, int N,   \
           int K) {                                                                               \
    w8a16_tile<T, MT>(x, w, scale, bias, y, M, N, K);                                             \
  }
W8A16(w8a16_f16_m1, __half, 1)
W8A16(w8a16_f16_m2, __half, 2)
W8A16(w8a16_f16_m4, __half, 4)
W8A16(w8a16_f16_m8, __half, 8)
W8A16(w8a16_bf16_m1, __nv_bfloat16, 1)
W8A16(w8a16_bf16_m2, __nv_bfloat16, 2)
W8A16(w8a16_bf16_m4, __nv_bfloat16, 4)
W8A16(w8a16_bf16_m8, __nv_bfloat16, 8)
