// Paged decode attention (one query token per sequence), GQA, split-K over the context
// (flash-decoding): pass 1 attends each PARTITION-token slice; pass 2 merges the slices.
//   q: [S, H, D] contiguous; k_cache, v_cache: [num_blocks, BS, Hkv, D] contiguous (one layer)
//   block_tables: [S, MB] int64 (logical block -> physical block); context_lens: [S] int64
//   out: [S, H, D]; with P = ceil(MB * BS / PARTITION) > 1 partitions also
//   part_out: [S, H, P, D] f32 (unnormalised), part_max, part_sum: [S, H, P] f32 (log2 domain)
// Query head h reads KV head h / G (G = H / Hkv <= 8). One block serves all G query heads
// of a KV head, so each K/V row is read from memory once per partition.
// Pass 1 grid: (P, Hkv, S), 128 threads. A "token group" of D/8 lanes loads one token's
// K (or V) row with 128-bit loads; UNROLL tokens per group are in flight at once.
#include "common.cuh"
using namespace halyard;

namespace {
constexpr int PARTITION = 256;  // tokens per pass-1 block (also in paged_attention.py)
constexpr int THREADS = 128;
constexpr int NWARPS = THREADS / WARP;
constexpr int MAX_G = 8;        // query heads per KV head
constexpr int UNROLL = 4;
constexpr float LOG2E = 1.4426950408889634f;
__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000u); }
}  // namespace

struct DecodeArgs {
  int H, Hkv, BS, MB, P;
  float scale;  // softmax scale (1/sqrt(D) for Llama)
};

// Shared memory of one pass-1 block.
template <int D> struct DecodeSmem {
  float q[MAX_G][D];          // scaled queries (log2 domain)
  float p[MAX_G][PARTITION];  // logits, then softmax numerators
  float acc[MAX_G][D];        // sum_t p[g][t] * v_t
  float m[MAX_G], l[MAX_G];   // max logit and sum of numerators per query head
};

// What one pass-1 block works on: sequence s, KV head hk, tokens [start, start + n_tok).
struct Slice {
  const long long* table;  // this sequence's block table [MB]
  long long head0;         // flat index of its first query head (s * H + hk * G)
  int hk, G, start, n_tok;
};

// Row [D] of (position pos, kv head hk) in a paged cache.
template <typename T, int D>
__device__ __forceinline__ const T* kv_row(const T* cache, const long long* table, int pos, int hk,
                                           const DecodeArgs& a) {
  const long long slot = table[pos / a.BS] * a.BS + pos % a.BS;
  return cache + (slot * a.Hkv + hk) * D;
}

// Token t of pass `pass` + u for this thread's token group, and its K or V pack (zero past the end).
template <typename T, int D>
__device__ __forceinline__ void load_tokens(const T* cache, const Slice& sl, const DecodeArgs& a, int pass,
                                            uint4 (&kv)[UNROLL]) {
  constexpr int TPT = D / PACK, TOK_PER_PASS = THREADS / TPT;
  const int tg = threadIdx.x / TPT, tl = threadIdx.x % TPT;
#pragma unroll
  for (int u = 0; u < UNROLL; ++u) {
    const int t = (pass + u) * TOK_PER_PASS + tg;
    kv[u] = t < sl.n_tok ? load_stream(kv_row<T, D>(cache, sl.table, sl.start + t, sl.hk, a) + tl * PACK)
                         : make_uint4(0, 0, 0, 0);
  }
}

// Pass 1a: sm.p[g][t] = q_g . k_t. A token group of D/8 lanes holds one K row; its partial
// dots are summed with width-limited shuffles. Loop bounds are block-uniform (no divergence).
template <typename T, int D>
__device__ void logits_pass(const T* k_cache, const Slice& sl, const DecodeArgs& a, DecodeSmem<D>& sm) {
  constexpr int TPT = D / PACK, TOK_PER_PASS = THREADS / TPT;
  const int tg = threadIdx.x / TPT, tl = threadIdx.x % TPT;
  float qr[MAX_G][PACK];
#pragma unroll
  for (int g = 0; g < MAX_G; ++g)
#pragma unroll
    for (int i = 0; i < PACK; ++i) qr[g][i] = g < sl.G ? sm.q[g][tl * PACK + i] : 0.f;
  const int n_pass = (sl.n_tok + TOK_PER_PASS - 1) / TOK_PER_PASS;
  for (int pass = 0; pass < n_pass; pass += UNROLL) {
    uint4 kv[UNROLL];
    load_tokens<T, D>(k_cache, sl, a, pass, kv);
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int t = (pass + u) * TOK_PER_PASS + tg;
      float kf[PACK];
      unpack8<T>(kv[u], kf);
#pragma unroll
      for (int g = 0; g < MAX_G; ++g) {
        if (g >= sl.G) break;
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < PACK; ++i) dot = fmaf(qr[g][i], kf[i], dot);
        dot = warp_sum(dot, TPT);
        if (tl == 0 && t < sl.n_tok) sm.p[g][t] = dot;
      }
    }
  }
}

// Pass 1b: softmax numerators 2^(logit - max) per query head; one warp per head.
template <int D>
__device__ void softmax_pass(const Slice& sl, DecodeSmem<D>& sm) {
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
  for (int g = warp; g < sl.G; g += NWARPS) {
    float m = neg_inf();
    for (int t = lane; t < sl.n_tok; t += WARP) m = fmaxf(m, sm.p[g][t]);
    m = warp_max(m);
    float l = 0.f;
    for (int t = lane; t < sl.n_tok; t += WARP) {
      const float e = exp2f(sm.p[g][t] - m);
      sm.p[g][t] = e;
      l += e;
    }
    l = warp_sum(l);
    if (lane == 0) {
      sm.m[g] = m;
      sm.l[g] = l;
    }
  }
}

// Pass 1c: sm.acc[g][d] = sum_t p[g][t] * v_t[d]; each lane owns 8 dims of its token group.
// Token groups of a warp are summed with shuffles, then warps through shared atomics.
template <typename T, int D>
__device__ void value_pass(const T* v_cache, const Slice& sl, const DecodeArgs& a, DecodeSmem<D>& sm) {
  constexpr int TPT = D / PACK, TOK_PER_PASS = THREADS / TPT;
  const int tg = threadIdx.x / TPT, tl = threadIdx.x % TPT, lane = threadIdx.x % WARP;
  float acc[MAX_G][PACK];
#pragma unroll
  for (int g = 0; g < MAX_G; ++g)
#pragma unroll
    for (int i = 0; i < PACK; ++i) acc[g][i] = 0.f;
  const int n_pass = (sl.n_tok + TOK_PER_PASS - 1) / TOK_PER_PASS;
  for (int pass = 0; pass < n_pass; pass += UNROLL) {
    uint4 kv[UNROLL];
    load_tokens<T, D>(v_cache, sl, a, pass, kv);
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int t = (pass + u) * TOK_PER_PASS + tg;
      if (t >= sl.n_tok) continue;
      float vf[PACK];
      unpack8<T>(kv[u], vf);
#pragma unroll
      for (int g = 0; g < MAX_G; ++g) {
        if (g >= sl.G) break;
        const float p = sm.p[g][t];
#pragma unroll
        for (int i = 0; i < PACK; ++i) acc[g][i] = fmaf(p, vf[i], acc[g][i]);
      }
    }
  }
#pragma unroll
  for (int g = 0; g < MAX_G; ++g) {
    if (g >= sl.G) break;
#pragma unroll
    for (int i = 0; i < PACK; ++i) {
      float v = acc[g][i];
      for (int off = TPT; off < WARP; off <<= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane < TPT) atomicAdd(&sm.acc[g][tl * PACK + i], v);
    }
  }
}

// One partition's result: the output itself when P == 1, else fp32 partials for pass 2.
template <typename T, int D>
__device__ void write_partition(const Slice& sl, const DecodeArgs& a, const DecodeSmem<D>& sm, int part, T* out,
                                float* part_out, float* part_max, float* part_sum) {
  for (int i = threadIdx.x; i < sl.G * D; i += THREADS) {
    const int g = i / D, d = i % D;
    if (a.P == 1) {
      out[sl.head0 * D + i] = from_f32<T>(sm.acc[g][d] / sm.l[g]);
    } else {
      part_out[((sl.head0 + g) * a.P + part) * D + d] = sm.acc[g][d];
    }
  }
  if (a.P > 1 && threadIdx.x < sl.G) {
    part_max[(sl.head0 + threadIdx.x) * a.P + part] = sm.m[threadIdx.x];
    part_sum[(sl.head0 + threadIdx.x) * a.P + part] = sm.l[threadIdx.x];
  }
}

template <typename T, int D>
__device__ void decode_partition(const T* __restrict__ q, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                                 const long long* __restrict__ block_tables, const long long* __restrict__ context_lens,
                                 T* __restrict__ out, float* __restrict__ part_out, float* __restrict__ part_max,
                                 float* __restrict__ part_sum, DecodeArgs a) {
  static_assert(D % PACK == 0 && D / PACK <= WARP, "head dim must be a multiple of 8, at most 256");
  __shared__ DecodeSmem<D> sm;
  const int s = blockIdx.z, part = blockIdx.x;
  const int G = a.H / a.Hkv, ctx = (int)context_lens[s], start = part * PARTITION;
  const Slice sl{block_tables + (long long)s * a.MB, (long long)s * a.H + blockIdx.y * G, (int)blockIdx.y, G, start,
                 min(PARTITION, ctx - start)};
  if (start >= ctx) {  // nothing to attend; a 1-partition launch still owes an output
    if (a.P == 1)
      for (int i = threadIdx.x; i < G * D; i += THREADS) out[sl.head0 * D + i] = from_f32<T>(0.f);
    return;
  }
  for (int i = threadIdx.x; i < G * D; i += THREADS) {
    sm.q[i / D][i % D] = to_f32(q[sl.head0 * D + i]) * a.scale * LOG2E;
    sm.acc[i / D][i % D] = 0.f;
  }
  __syncthreads();
  logits_pass<T, D>(k_cache, sl, a, sm);
  __syncthreads();
  softmax_pass<D>(sl, sm);
  __syncthreads();
  value_pass<T, D>(v_cache, sl, a, sm);
  __syncthreads();
  write_partition<T, D>(sl, a, sm, part, out, part_out, part_max, part_sum);
}

// Pass 2: merge the partitions of one (sequence, query head).
//   out[d] = sum_p 2^(m_p - M) part_out[p][d] / sum_p 2^(m_p - M) part_sum[p]
// Grid: (H, S); block: 128 threads; dynamic shared memory: P floats.
template <typename T>
__device__ void decode_reduce(const float* __restrict__ part_out, const float* __restrict__ part_max,
                              const float* __restrict__ part_sum, const long long* __restrict__ context_lens,
                              T* __restrict__ out, int H, int P, int D) {
  extern __shared__ float w_s[];
  __shared__ float scratch[WARP];
  const long long head = (long long)blockIdx.y * H + blockIdx.x;
  const int n = (int)((context_lens[blockIdx.y] + PARTITION - 1) / PARTITION);
  if (n <= 0) {
    for (int d = threadIdx.x; d < D; d += blockDim.x) out[head * D + d] = from_f32<T>(0.f);
    return;
  }
  float m = neg_inf();
  for (int p = threadIdx.x; p < n; p += blockDim.x) m = fmaxf(m, part_max[head * P + p]);
  m = block_max(m, scratch);
  float l = 0.f;
  for (int p = threadIdx.x; p < n; p += blockDim.x) {
    const float w = exp2f(part_max[head * P + p] - m);
    w_s[p] = w;
    l += w * part_sum[head * P + p];
  }
  l = block_sum(l, scratch);  // its barriers also publish w_s
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.f;
    for (int p = 0; p < n; ++p) o = fmaf(w_s[p], part_out[(head * P + p) * D + d], o);
    out[head * D + d] = from_f32<T>(o / l);
  }
}

#define DECODE(T, TN, D)                                                                           \
  extern "C" __global__ void __launch_bounds__(THREADS) paged_decode_##TN##_d##D(                 \
      const T* q, const T* k_cache, const T* v_cache, const long long* block_tables,              \
      const long long* context_lens, T* out, float* part_out, float* part_max, float* part_sum,   \
      int H, int Hkv, int BS, int MB, int P, float scale) {                                        \
    decode_partition<T, D>(q, k_cache, v_cache, block_tables, context_lens, out, part_out,        \
                           part_max, part_sum, DecodeArgs{H, Hkv, BS, MB, P, scale});              \
  }
#define REDUCE(T, TN)                                                                              \
  extern "C" __global__ void paged_decode_reduce_##TN(const float* part_out, const float* part_max, \
                                                      const float* part_sum,                       \
                                                      const long long* context_lens, T* out,       \
                                                      int H, int P, int D) {                       \
    decode_reduce<T>(part_out, part_max, part_sum, context_lens, out, H, P, D);                    \
  }
#define ALL_HEAD_DIMS(T, TN) \
  DECODE(T, TN, 16) DECODE(T, TN, 32) DECODE(T, TN, 64) DECODE(T, TN, 128) DECODE(T, TN, 256) REDUCE(T, TN)
ALL_HEAD_DIMS(__half, f16)
ALL_HEAD_DIMS(__nv_bfloat16, bf16)
