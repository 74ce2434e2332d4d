// Weight-only int4 GEMM, group-wise scales (and zeros), for decode-sized batches (M = 1..64).
//   x: [M, K] fp16/bf16, qweight: [N, K/2] uint8, two weights per byte, low nibble = even k
//   scale, zero: [N, K/G] (same dtype as x; zero null = symmetric, zero point 8), bias: [N] or null
//   w[n, k] = (q[n, k] - zero[n, k/G]) * scale[n, k/G];  y = T(x @ w^T + bias)   (fp32 accumulation; batch 1
//   sums each word of 8 products in T first)
// Each lane reads 16 bytes = 32 weights of one row per step (one group, since G % 32 == 0),
// so a warp streams 512 contiguous bytes per row per step. Per 8-weight slice:
//   acc[m][r] += scale * (sum_i q_i x_i - zero * sum_i x_i)   (tiles of 2..8 rows, fp32)
// Batch 1 dequantizes in packed half2/bfloat162 instead (below).
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

// Batch 1: two nibbles at a time, packed half2 / bfloat162 math. Nibbles i and i + 4 of a word
// (bits 4i and 16 + 4i) OR-ed into the mantissa of MAGIC (1024 as fp16, 128 as bf16) are the pair
// (MAGIC + q_i, MAGIC + q_i+4), exact; then per pair, in T as the torch reference rounds:
//   w = (q - zero) * scale          (HSUB2 of MAGIC, HSUB2, HMUL2: the reference's dequantized weight)
//   acc2 = w * (x_i, x_i+4) + acc2  (HFMA2; the 8 products of a word are summed in T, then fp32)
template <typename T> struct Packed;
template <> struct Packed<__half> {
  using T2 = __half2;
  static constexpr unsigned int MAGIC = 0x64006400u;
};
template <> struct Packed<__nv_bfloat16> {
  using T2 = __nv_bfloat162;
  static constexpr unsigned int MAGIC = 0x43004300u;
};
template <typename T> __device__ __forceinline__ typename Packed<T>::T2 as_pair(unsigned int bits) {
  return *reinterpret_cast<typename Packed<T>::T2*>(&bits);
}
// (v, v) in T, as the bits of a pair.
template <typename T> __device__ __forceinline__ unsigned int splat(float v) {
  T h = from_f32<T>(v);
  const unsigned int b = *reinterpret_cast<unsigned short*>(&h);
  return b | (b << 16);
}

// x pairs (x_i, x_i+4), i = 0..3, of 8 consecutive elements (one uint4), to match the nibble pairs.
__device__ __forceinline__ void pair_x(const uint4& v, unsigned int (&xp)[4]) {
  xp[0] = __byte_perm(v.x, v.z, 0x5410);
  xp[1] = __byte_perm(v.x, v.z, 0x7632);
  xp[2] = __byte_perm(v.y, v.w, 0x5410);
  xp[3] = __byte_perm(v.y, v.w, 0x7632);
}

// sum_i ((q_i - zero) * scale) x_i over the 8 nibbles of `word`; s2, z2: splat scale and zero.
template <typename T>
__device__ __forceinline__ float packed_dot8(unsigned int word, const unsigned int (&xp)[4], unsigned int s2,
                                             unsigned int z2) {
  using T2 = typename Packed<T>::T2;
  const T2 magic = as_pair<T>(Packed<T>::MAGIC);
  T2 acc = as_pair<T>(0u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const T2 q = __hsub2(as_pair<T>(((word >> (4 * i)) & 0x000F000Fu) | Packed<T>::MAGIC), magic);
    const T2 w = __hmul2(__hsub2(q, as_pair<T>(z2)), as_pair<T>(s2));
    acc = __hfma2(w, as_pair<T>(xp[i]), acc);
  }
  const float2 f = pair_to_f32(*reinterpret_cast<unsigned int*>(&acc), T());
  return f.x + f.y;
}

template <typename T>
__device__ __forceinline__ void accumulate_step_m1(const uint4 (&wq)[ROWS], const float (&s)[ROWS],
                                                   const float (&z)[ROWS], const T* x, int k, float (&acc)[1][ROWS]) {
  unsigned int s2[ROWS], z2[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    s2[r] = splat<T>(s[r]);  // s, z were read from T: exact
    z2[r] = splat<T>(z[r]);
  }
#pragma unroll
  for (int part = 0; part < 4; ++part) {
    unsigned int xp[4];
    pair_x(load8(x + k + part * PACK), xp);
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const unsigned int word = part == 0 ? wq[r].x : part == 1 ? wq[r].y : part == 2 ? wq[r].z : wq[r].w;
      acc[0][r] += packed_dot8<T>(word, xp, s2[r], z2[r]);
    }
  }
}

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
    if constexpr (MT == 1) {
      accumulate_step_m1<T>(wq, s, z, x + (long long)m0 * K, k, acc);
    } else {
      accumulate_step<T, MT>(wq, s, z, x, k, m0, M, K, acc);
    }
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
