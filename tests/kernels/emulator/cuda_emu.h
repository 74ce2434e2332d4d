// A CPU stand-in for the CUDA features Halyard's kernels use, so the kernels' own
// source can run on a machine without a GPU. One block runs at a time; each CUDA
// thread is an OS thread. __syncthreads is a block barrier and each warp shuffle a
// warp barrier, so a divergent barrier or shuffle deadlocks here as it would be
// undefined on a GPU. __shared__ variables become function statics (one block at a time).
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct uint4 { unsigned int x, y, z, w; };
struct float2 { float x, y; };
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }

inline thread_local dim3 threadIdx;
inline dim3 blockIdx, blockDim, gridDim;

struct EmuBlock {
  std::barrier<>* block = nullptr;
  std::barrier<>* warps[32] = {};
  float xchg[32][32] = {};
};
inline EmuBlock emu;
inline std::mutex emu_atomic;
inline float w_s[1 << 16];  // `extern __shared__` (dynamic shared memory)

inline void __syncthreads() { emu.block->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu.warps[threadIdx.x / 32]->arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned, float v, int lane_mask, int width = 32) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  emu.xchg[warp][lane] = v;
  emu.warps[warp]->arrive_and_wait();
  int src = lane ^ lane_mask;
  if (src / width != lane / width) src = lane;
  const float out = emu.xchg[warp][src];
  emu.warps[warp]->arrive_and_wait();
  return out;
}

inline float atomicAdd(float* p, float v) {
  std::lock_guard<std::mutex> guard(emu_atomic);
  const float old = *p;
  *p = old + v;
  return old;
}

template <class T> inline T __ldg(const T* p) { return *p; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const uint64_t v = (uint64_t(y) << 32) | x;
  unsigned r = 0;
  for (int n = 0; n < 4; ++n) r |= unsigned((v >> (8 * ((s >> (4 * n)) & 7))) & 0xFF) << (8 * n);
  return r;
}
inline float __expf(float x) { return std::exp(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
using std::max;
using std::min;

extern "C" {
__attribute__((used)) void emu_begin_block(unsigned bx, unsigned by, unsigned bz, unsigned gx, unsigned gy, unsigned gz,
                                                unsigned threads) {
  blockIdx = dim3{bx, by, bz};
  gridDim = dim3{gx, gy, gz};
  blockDim = dim3{threads, 1, 1};
  emu.block = new std::barrier<>(threads);
  for (unsigned w = 0; w < threads / 32; ++w) emu.warps[w] = new std::barrier<>(32);
}
__attribute__((used)) void emu_end_block() {
  delete emu.block;
  for (auto*& w : emu.warps) { delete w; w = nullptr; }
}
__attribute__((used)) void emu_set_thread(unsigned tx) { threadIdx = dim3{tx, 0, 0}; }
}
