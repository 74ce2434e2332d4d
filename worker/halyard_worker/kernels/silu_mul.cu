// Fused SiLU-and-multiply of the merged gate/up projection.
//   gate_up: [T, 2I] (gate = columns [0, I), up = [I, 2I)), out: [T, I]
//   out = T(T(silu(gate)) * up)   -- the rounding of the torch reference
// Grid: (T, ceil(I / (8 * 256))); block: 256 threads, 8 elements each; I % 8 == 0.
#include "common.cuh"
using namespace halyard;

template <typename T>
__device__ void silu_mul_row(const T* __restrict__ gate_up, T* __restrict__ out, int I) {
  const long long row = blockIdx.x;
  const int j = (blockIdx.y * blockDim.x + threadIdx.x) * PACK;
  if (j >= I) return;
  float g[PACK], u[PACK];
  unpack8<T>(load8(gate_up + row * 2 * I + j), g);
  unpack8<T>(load8(gate_up + row * 2 * I + I + j), u);
#pragma unroll
  for (int i = 0; i < PACK; ++i) g[i] = round_to<T>(g[i] / (1.f + __expf(-g[i]))) * u[i];
  store8(out + row * I + j, pack8<T>(g));
}

#define SILU_MUL(NAME, T) \
  extern "C" __global__ void NAME(const T* gate_up, T* out, int I) { silu_mul_row<T>(gate_up, out, I); }
SILU_MUL(silu_mul_f16, __half)
SILU_MUL(silu_mul_bf16, __nv_bfloat16)
