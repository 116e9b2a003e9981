// SPDX-License-Identifier: Apache-2.0
#pragma once
// cache_kernels.cuh: CUDA kernels of the cache family. Torch-free.

#include <cuda_fp8.h>

#include <cstdint>

#include "ops/cache/cache_math.h"
#include "stablekernels/cuda_common.cuh"

namespace stablekernels::cache::cuda {

using stablekernels::cuda::load_packed;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::unpack;
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
  stablekernels::cuda::pdl_enter();
  bad_entry_claim[kind] = 0u;
}

// N elements into the cache: copied (auto), or as fp8 e4m3 bits of x / scale (float32 math,
// saturating to +-448; NaN stays NaN).
template <typename T, int N, bool kFp8>
__device__ __forceinline__ void store_chunk(const Vec<T, N>& x, void* dst, int64_t dst_off,
                                            float scale) {
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
//
// A thread issues its key and value loads together with the slot load (load_packed: not
// moved behind the slot test): they do not depend on it (the rows below num_tokens are
// always readable), and waiting for the slot first made every block pay two memory round
// trips one after the other. Nothing reads the slot before those loads: its position,
// computed ahead of the inner loop, made every thread wait for the slot before issuing them
// (16384 tokens x 8 heads x 128, bf16, on an H200: 35.7 -> 34.7 us). The (head, chunk) pair and the
// slot's block are found by 32-bit divisions (per_token < 2^31, checked by the host;
// slot_position), not 64-bit ones. ONE_PASS (the launch gives each token a block and each
// (head, chunk) pair a thread): both loops end after one trip, so the kernel has none
// (16384 tokens: 34.8 -> 34.5 us in a harness of the kernel alone).
template <typename T, int N, bool kFp8, bool ONE_PASS>
__global__ void __launch_bounds__(256)
    reshape_and_cache_flash_kernel(const T* key, const T* value, void* key_cache, void* value_cache,
                                   const int64_t* slots, ReshapeAndCacheShape s,
                                   const float* k_scale, const float* v_scale,
                                   BadEntryRecord* bad) {
  stablekernels::cuda::pdl_enter();
  const int chunks = static_cast<int>(s.head_size / N);
  const int per_token = static_cast<int>(s.num_heads) * chunks;
  float ks = 1.0f;
  float vs = 1.0f;
  if constexpr (kFp8) {
    ks = *k_scale;
    vs = *v_scale;
  }
  for (int64_t t = blockIdx.x; t < s.num_tokens; t += gridDim.x) {
    const int64_t slot = slots[t * s.slot_mapping_stride];
    const T* k_row = key + t * s.key.token_stride;
    const T* v_row = value + t * s.value.token_stride;
    for (int i = threadIdx.x; i < per_token; i += blockDim.x) {
      const int h = i / chunks;
      const int d = (i - h * chunks) * N;
      const auto k = load_packed<T, N>(k_row + h * s.key.head_stride + d);
      const auto v = load_packed<T, N>(v_row + h * s.value.head_stride + d);
      if (slot < 0 || slot >= s.num_slots) {  // the same for the whole block
        break;
      }
      const SlotPosition pos = slot_position(s, slot);
      store_chunk<T, N, kFp8>(unpack<T, N>(k), key_cache, cache_offset(s.key_cache, pos, h) + d,
                              ks);
      store_chunk<T, N, kFp8>(unpack<T, N>(v), value_cache, cache_offset(s.value_cache, pos, h) + d,
                              vs);
      if constexpr (ONE_PASS) {
        break;
      }
    }
    if (slot >= s.num_slots && bad != nullptr && threadIdx.x == 0) {
      record_bad_entry(bad, kBadSlot, t, slot, 0, s.num_slots);
    }
    if constexpr (ONE_PASS) {
      break;
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
  stablekernels::cuda::pdl_enter();
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
