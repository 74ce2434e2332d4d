// Varlen causal prefill attention over the paged KV cache (GQA): every prefill chunk of
// a step in one launch, K/V read in place from the cache (no gather, no copy).
//   q: [Tp, H, D] contiguous, the step's prefill rows; sequence s owns rows
//      [cu_q[s], cu_q[s + 1]) = the last q_lens[s] positions of its ctx_lens[s] tokens
//   k_cache, v_cache: [num_blocks, BS, Hkv, D] (one layer, the chunk's K/V already written)
//   block_tables: [P, W] int64; tiles: [2, NT] int64 (sequence, first query) per tile
//   out: [Tp, H, D]
// Grid: (NT, Hkv), 128 threads. A block serves TILE queries x G query heads (G = H / Hkv
// <= 8) of one KV head: each K/V chunk of CHUNK tokens is loaded into shared memory once
// and used by all TILE * G (query, head) pairs. A warp owns pairs warp, warp + 4, ...;
// lane j scores key j of the chunk, lanes own output dims lane + 32 i (online softmax, fp32).
#include "common.cuh"
using namespace halyard;

namespace {
constexpr int TILE = 4;  // queries per block; must equal TILE in model/prefill.py
constexpr int THREADS = 128;
constexpr int NWARPS = THREADS / WARP;
constexpr int MAX_G = 8;
constexpr int PAIRS = TILE * MAX_G / NWARPS;  // (query, head) pairs per warp at most
__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000u); }
}  // namespace

template <typename T, int D> struct PrefillSmem {
  static constexpr int CHUNK = D <= 128 ? 32 : 16;  // keys per shared-memory chunk
  T q[TILE * MAX_G][D];
  T k[CHUNK][D];
  T v[CHUNK][D];
  float p[NWARPS][WARP];  // one pair's softmax numerators, broadcast to the warp
};

struct PrefillArgs {
  int H, Hkv, BS, W, NT;
  float scale;
};

// Load `rows` rows of D elements (row r from src_row(r)) into dst with 128-bit loads.
template <typename T, int D, typename RowFn>
__device__ __forceinline__ void load_rows(T (*dst)[D], int rows, RowFn src_row) {
  constexpr int PACKS = D / PACK;
  for (int i = threadIdx.x; i < rows * PACKS; i += THREADS) {
    const int r = i / PACKS, c = (i % PACKS) * PACK;
    const T* src = src_row(r);
    store8(&dst[r][c], src != nullptr ? load8(src + c) : make_uint4(0, 0, 0, 0));
  }
}

template <typename T, int D>
__device__ void prefill_tile(const T* __restrict__ q, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                             const long long* __restrict__ block_tables, const long long* __restrict__ q_lens,
                             const long long* __restrict__ ctx_lens, const long long* __restrict__ cu_q,
                             const long long* __restrict__ tiles, T* __restrict__ out, const PrefillArgs a) {
  using Smem = PrefillSmem<T, D>;
  constexpr int CHUNK = Smem::CHUNK, DPL = D / WARP;  // output dims per lane
  __shared__ Smem sm;
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
  const int s = (int)tiles[blockIdx.x], q0 = (int)tiles[a.NT + blockIdx.x], hk = blockIdx.y;
  const int G = a.H / a.Hkv, q_len = (int)q_lens[s], ctx = (int)ctx_lens[s];
  const int rows = min(TILE, q_len - q0), first_pos = ctx - q_len + q0;
  const long long row0 = cu_q[s] + q0;  // flat row of the tile's first query
  const long long* table = block_tables + (long long)s * a.W;
  // pair i = (query r = i / G, head g = i % G); padding pairs are zero rows, skipped below
  load_rows<T, D>(sm.q, TILE * MAX_G, [&](int i) -> const T* {
    const int r = i / G, g = i % G;
    return (i < TILE * G && r < rows) ? q + ((row0 + r) * a.H + hk * G + g) * D : nullptr;
  });
  float acc[PAIRS][DPL], m[PAIRS], l[PAIRS];
#pragma unroll
  for (int j = 0; j < PAIRS; ++j) {
    m[j] = neg_inf();
    l[j] = 0.f;
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[j][i] = 0.f;
  }
  const int kv_end = first_pos + rows;  // keys [0, kv_end) cover every query of the tile
  for (int c0 = 0; c0 < kv_end; c0 += CHUNK) {
    const int n = min(CHUNK, kv_end - c0);
    __syncthreads();  // the previous chunk is no longer read
    auto kv_row = [&](const T* cache, int t) -> const T* {
      if (t >= n) return nullptr;
      const int pos = c0 + t;
      return cache + ((table[pos / a.BS] * a.BS + pos % a.BS) * a.Hkv + hk) * D;
    };
    load_rows<T, D>(sm.k, CHUNK, [&](int t) { return kv_row(k_cache, t); });
    load_rows<T, D>(sm.v, CHUNK, [&](int t) { return kv_row(v_cache, t); });
    __syncthreads();
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) {
      const int pair = warp + j * NWARPS, r = pair / G;
      if (pair >= TILE * G || r >= rows) continue;  // uniform across the warp
      const int pos = first_pos + r;
      float score = neg_inf();
      if (lane < n && c0 + lane <= pos) {
        float dot = 0.f;
        for (int d = 0; d < D; ++d) dot = fmaf(to_f32(sm.q[pair][d]), to_f32(sm.k[lane][d]), dot);
        score = dot * a.scale;
      }
      const float m_new = fmaxf(m[j], warp_max(score));  // finite: key 0 is in chunk 0 for every query
      const float p = score == neg_inf() ? 0.f : __expf(score - m_new);
      const float alpha = m[j] == neg_inf() ? 0.f : __expf(m[j] - m_new);
      l[j] = l[j] * alpha + warp_sum(p);
      m[j] = m_new;
      sm.p[warp][lane] = p;
      __syncwarp();
#pragma unroll
      for (int i = 0; i < DPL; ++i) {
        float o = acc[j][i] * alpha;
        for (int t = 0; t < n; ++t) o = fmaf(sm.p[warp][t], to_f32(sm.v[t][lane + WARP * i]), o);
        acc[j][i] = o;
      }
      __syncwarp();  // sm.p is rewritten by the next pair
    }
  }
#pragma unroll
  for (int j = 0; j < PAIRS; ++j) {
    const int pair = warp + j * NWARPS, r = pair / G, g = pair % G;
    if (pair >= TILE * G || r >= rows) continue;
    T* o = out + ((row0 + r) * a.H + hk * G + g) * D;
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[lane + WARP * i] = from_f32<T>(acc[j][i] / l[j]);
  }
}

#define PREFILL(NAME, T, D)                                                                                  \
  extern "C" __global__ void __launch_bounds__(THREADS)                                                      \
      NAME(const T* q, const T* k_cache, const T* v_cache, const long long* block_tables,                    \
           const long long* q_lens, const long long* ctx_lens, const long long* cu_q, const long long* tiles, \
           T* out, int H, int Hkv, int BS, int W, int NT, float scale) {                                     \
    prefill_tile<T, D>(q, k_cache, v_cache, block_tables, q_lens, ctx_lens, cu_q, tiles, out,               \
                       PrefillArgs{H, Hkv, BS, W, NT, scale});                                               \
  }
PREFILL(prefill_attention_f16_d32, __half, 32)
PREFILL(prefill_attention_f16_d64, __half, 64)
PREFILL(prefill_attention_f16_d128, __half, 128)
PREFILL(prefill_attention_f16_d256, __half, 256)
PREFILL(prefill_attention_bf16_d32, __nv_bfloat16, 32)
PREFILL(prefill_attention_bf16_d64, __nv_bfloat16, 64)
PREFILL(prefill_attention_bf16_d128, __nv_bfloat16, 128)
PREFILL(prefill_attention_bf16_d256, __nv_bfloat16, 256)
