// SPDX-License-Identifier: Apache-2.0
#pragma once
// cache_kernels.cuh: CUDA kernels of the cache family. Torch-free.

#include <cuda_fp8.h>

#include <cstdint>

#include "ops/cache/cache_math.h"
#include "stablekernels/cuda_common.cuh"

namespace stablekernels::cache::cuda {

using stablekernels::cuda::load_vec;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::Vec;

// Per device (a module global has one instance per context): whether a thread has claimed
// the record of each BadEntryKind. Cleared by reset_bad_entry_claim once the host has read
// the record. Only cache_cuda.cu includes this header.
__device__ unsigned int bad_entry_claim[kBadEntryKinds];

// Writes a bad entry into *rec (pinned host memory) if no thread of this device holds the
// claim of `kind`: the fields, a system-scope fence, then `set`, so that a host that sees
// `set` sees the fields. Later bad entries are skipped without a record until the reset.
__device__ __noinline__ void record_bad_entry(BadEntryRecord* rec, int kind, int64_t index,
                                              int64_t a, int64_t b, int64_t limit) {
  if (atomicCAS(&bad_entry_claim[kind], 0u, 1u) != 0u) {
    return;
  }
  volatile BadEntryRecord* r = rec;
  r->index = index;
  r->a = a;
  r->b = b;
  r->limit = limit;
  __threadfence_system();
  r->set = 1;
}

__global__ void reset_bad_entry_claim(int kind) {
  bad_entry_claim[kind] = 0u;
}

// N elements of `src` into the cache: copied (auto), or as fp8 e4m3 bits of x / scale
// (float32 math, saturating to +-448; NaN stays NaN).
template <typename T, int N, bool kFp8>
__device__ __forceinline__ void cache_chunk(const T* src, void* dst, int64_t dst_off, float scale) {
  const Vec<T, N> x = load_vec<T, N>(src);
  if constexpr (kFp8) {
    Vec<uint8_t, N> y;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      y.v[j] = static_cast<uint8_t>(
          __nv_cvt_float_to_fp8(fp8_prescale(to_float(x.v[j]), scale), __NV_SATFINITE, __NV_E4M3));
    }
    store_vec<uint8_t, N>(static_cast<uint8_t*>(dst) + dst_off, y);
  } else {
    store_vec<T, N>(static_cast<T*>(dst) + dst_off, x);
  }
}

// grid.x walks the tokens, the threads of a block the (head, N-element chunk) pairs of a token.
// A slot < 0 skips the token. A slot >= num_slots is skipped too, and recorded in *bad (when
// not null) for the host to report.
template <typename T, int N, bool kFp8>
__global__ void __launch_bounds__(256)
    reshape_and_cache_flash_kernel(const T* key, const T* value, void* key_cache, void* value_cache,
                                   const int64_t* slots, ReshapeAndCacheShape s,
                                   const float* k_scale, const float* v_scale,
                                   BadEntryRecord* bad) {
  const int64_t chunks = s.head_size / N;
  const int64_t per_token = s.num_heads * chunks;
  float ks = 1.0f;
  float vs = 1.0f;
  if constexpr (kFp8) {
    ks = *k_scale;
    vs = *v_scale;
  }
  for (int64_t t = blockIdx.x; t < s.num_tokens; t += gridDim.x) {
    const int64_t slot = slots[t * s.slot_mapping_stride];
    if (slot < 0) {
      continue;
    }
    if (slot >= s.num_slots) {
      if (bad != nullptr && threadIdx.x == 0) {
        record_bad_entry(bad, kBadSlot, t, slot, 0, s.num_slots);
      }
      continue;
    }
    for (int64_t i = threadIdx.x; i < per_token; i += blockDim.x) {
      const int64_t h = i / chunks;
      const int64_t d = (i - h * chunks) * N;
      cache_chunk<T, N, kFp8>(key + t * s.key.token_stride + h * s.key.head_stride + d, key_cache,
                              cache_offset(s.key_cache, s.block_size, slot, h) + d, ks);
      cache_chunk<T, N, kFp8>(value + t * s.value.token_stride + h * s.value.head_stride + d,
                              value_cache, cache_offset(s.value_cache, s.block_size, slot, h) + d,
                              vs);
    }
  }
}

// All layers in one launch: grid.y is the layer, grid.x walks the pairs of the mapping, the
// threads of a block the V-sized units of a key block and then of a value block. layer_ptrs
// holds the key cache addresses of the layers, then the value cache ones. A pair naming a
// block outside [0, num_blocks) is skipped, and recorded in *bad (when not null).
template <typename V>
__global__ void __launch_bounds__(256)
    copy_blocks_kernel(const int64_t* layer_ptrs, int64_t num_layers, const int64_t* mapping,
                       int64_t map_stride0, int64_t map_stride1, int64_t num_pairs,
                       int64_t num_blocks, int64_t key_units, int64_t value_units,
                       BadEntryRecord* bad) {
  const int64_t layer = blockIdx.y;
  V* k = reinterpret_cast<V*>(layer_ptrs[layer]);
  V* v = reinterpret_cast<V*>(layer_ptrs[num_layers + layer]);
  for (int64_t p = blockIdx.x; p < num_pairs; p += gridDim.x) {
    const int64_t src = mapping[p * map_stride0];
    const int64_t dst = mapping[p * map_stride0 + map_stride1];
    if (src < 0 || src >= num_blocks || dst < 0 || dst >= num_blocks) {
      if (bad != nullptr && threadIdx.x == 0 && layer == 0) {
        record_bad_entry(bad, kBadBlock, p, src, dst, num_blocks);
      }
      continue;
    }
    for (int64_t j = threadIdx.x; j < key_units; j += blockDim.x) {
      k[dst * key_units + j] = k[src * key_units + j];
    }
    for (int64_t j = threadIdx.x; j < value_units; j += blockDim.x) {
      v[dst * value_units + j] = v[src * value_units + j];
    }
  }
}

}  // namespace stablekernels::cache::cuda
