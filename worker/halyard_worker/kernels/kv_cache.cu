// Write the step's keys and values into the paged KV cache.
//   key, value: [T, Hkv, D] (token strides key_stride/value_stride elements, heads packed)
//   k_cache, v_cache: [num_blocks, block_size, Hkv, D] contiguous (one layer)
//   slot_mapping: [T] int64, flat slot = block * block_size + offset; < 0 = padding, skipped
// A slot's row [Hkv, D] is contiguous in the cache, so the copy is 128-bit vectors.
// Grid: T blocks; block: 128 threads; (Hkv * D) % 8 == 0, strides % 8 == 0, 16-byte aligned.
#include "common.cuh"
using namespace halyard;

template <typename T>
__device__ void write_kv_token(const T* __restrict__ key, const T* __restrict__ value, T* __restrict__ k_cache,
                               T* __restrict__ v_cache, const long long* __restrict__ slot_mapping,
                               int row_elems, long long key_stride, long long value_stride) {
  const long long t = blockIdx.x;
  const long long slot = slot_mapping[t];
  if (slot < 0) return;
  const T* k = key + t * key_stride;
  const T* v = value + t * value_stride;
  T* kc = k_cache + slot * row_elems;
  T* vc = v_cache + slot * row_elems;
  for (int j = threadIdx.x * PACK; j < row_elems; j += blockDim.x * PACK) {
    store8(kc + j, load8(k + j));
    store8(vc + j, load8(v + j));
  }
}

#define WRITE_KV(NAME, T)                                                                        \
  extern "C" __global__ void NAME(const T* key, const T* value, T* k_cache, T* v_cache,         \
                                  const long long* slot_mapping, int row_elems,                 \
                                  long long key_stride, long long value_stride) {               \
    write_kv_token<T>(key, value, k_cache, v_cache, slot_mapping, row_elems, key_stride,        \
                      value_stride);                                                            \
  }
WRITE_KV(write_kv_f16, __half)
WRITE_KV(write_kv_bf16, __nv_bfloat16)
