// RMSNorm, optionally fused with the residual add that precedes it.
//   x, residual, out, residual_out: [T, H] rows (row stride = H), weight: [H]
//   h   = residual ? T(x + residual) : x          (residual_out <- h)
//   out = T(weight * T(h * rsqrt(mean(h^2) + eps)))   -- the rounding of the torch reference
// Grid: T blocks (one row each); block: 256 threads; H % 8 == 0, 16-byte aligned rows.
#include "common.cuh"
using namespace halyard;

template <typename T>
__device__ void rms_norm_row(const T* __restrict__ x, const T* __restrict__ residual,
                             const T* __restrict__ weight, T* __restrict__ out,
                             T* residual_out, int H, float eps) {  // residual_out is re-read: not restrict
  __shared__ float scratch[32];
  const long long row = blockIdx.x;
  const T* xr = x + row * H;
  // Pass 2 re-reads h (an L1/L2 hit); each thread reads back only the packs it wrote itself.
  const T* src = residual != nullptr ? residual_out + row * H : xr;
  float sumsq = 0.f;
  for (int j = threadIdx.x * PACK; j < H; j += blockDim.x * PACK) {
    float h[PACK];
    unpack8<T>(load8(xr + j), h);
    if (residual != nullptr) {
      float r[PACK];
      unpack8<T>(load8(residual + row * H + j), r);
#pragma unroll
      for (int i = 0; i < PACK; ++i) h[i] = round_to<T>(h[i] + r[i]);
      store8(residual_out + row * H + j, pack8<T>(h));
    }
#pragma unroll
    for (int i = 0; i < PACK; ++i) sumsq += h[i] * h[i];
  }
  const float rstd = rsqrtf(block_sum(sumsq, scratch) / H + eps);
  for (int j = threadIdx.x * PACK; j < H; j += blockDim.x * PACK) {
    float h[PACK], w[PACK];
    unpack8<T>(load8(src + j), h);
    unpack8<T>(load8(weight + j), w);
#pragma unroll
    for (int i = 0; i < PACK; ++i) h[i] = w[i] * round_to<T>(h[i] * rstd);
    store8(out + row * H + j, pack8<T>(h));
  }
}

#define RMS_NORM(NAME, T)                                                                        \
  extern "C" __global__ void NAME(const T* x, const T* residual, const T* weight, T* out,       \
                                  T* residual_out, int H, float eps) {                          \
    rms_norm_row<T>(x, residual, weight, out, residual_out, H, eps);                            \
  }
RMS_NORM(rms_norm_f16, __half)
RMS_NORM(rms_norm_bf16, __nv_bfloat16)
