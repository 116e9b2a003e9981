// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA kernel of the attention family. Torch-free.
//
// One pass over memory: each element of the two partial results is read once and each
// output element written once, N elements per access (16 bytes when the layout allows it);
// the lse values are read once per row and thread. Launch shape: attention_tuning.h.

#include <cstdint>
#include <cstring>

#include "ops/attention/attention_math.h"
#include "stablekernels/cuda_common.cuh"
#include "stablekernels/launch.h"

namespace stablekernels::attention::cuda {

using stablekernels::cuda::from_float;
using stablekernels::cuda::load_vec;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::Vec;

// Stores a vector as one access of its full width. nvcc lowers the struct copy of
// store_vec (and a plain uint4 store of the same bits) into one store per element pair
// here, where the elements are computed rather than loaded: SASS 4 x STG.E for a 16-byte
// vector, four times the store instructions and partial-sector writes for L2 to merge.
// The st.global of the packed words is a single STG.E.128 (.64, or STG.E).
template <typename T, int N>
__device__ __forceinline__ void store_packed(T* p, const Vec<T, N>& v) {
  constexpr int kBytes = static_cast<int>(sizeof(T)) * N;
  if constexpr (kBytes == 16) {
    uint4 u;
    memcpy(&u, &v, kBytes);
    asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(u.x), "r"(u.y), "r"(u.z),
                 "r"(u.w)
                 : "memory");
  } else if constexpr (kBytes == 8) {
    uint2 u;
    memcpy(&u, &v, kBytes);
    asm volatile("st.global.v2.b32 [%0], {%1, %2};" ::"l"(p), "r"(u.x), "r"(u.y) : "memory");
  } else if constexpr (kBytes == 4) {
    uint32_t u;
    memcpy(&u, &v, kBytes);
    asm volatile("st.global.b32 [%0], %1;" ::"l"(p), "r"(u) : "memory");
  } else {
    store_vec<T, N>(p, v);
  }
}

// output [num_tokens, num_heads, head_size] = merge of prefix and suffix (same shape) by
// the weights of merge_weights(prefix_lse[h, t], suffix_lse[h, t]); output_lse[h, t] (when
// not null) = the merged lse. Row r is (t, h) = (r / num_heads, r % num_heads): token-major,
// so a tile's rows lie back to back in the three large tensors (the lse values, 4 bytes a
// row, are the ones read with a stride).
template <typename T, int N, int RPT>
__global__ void __launch_bounds__(kTileMaxThreads)
    merge_attn_states_kernel(T* output, float* output_lse, const T* prefix,
                             const float* __restrict__ prefix_lse, const T* suffix,
                             const float* __restrict__ suffix_lse, MergeShape s) {
  const int64_t rows = s.num_heads * s.num_tokens;
  const int64_t chunks = s.head_size / N;
  const int64_t tile = static_cast<int64_t>(blockDim.y) * RPT;
  for (int64_t r0 = blockIdx.x * tile + threadIdx.y; r0 < rows; r0 += gridDim.x * tile) {
    MergeWeights w[RPT];
    T* out[RPT];
    const T* pre[RPT];
    const T* suf[RPT];
#pragma unroll
    for (int u = 0; u < RPT; ++u) {
      const int64_t r = r0 + static_cast<int64_t>(u) * blockDim.y;
      out[u] = nullptr;
      if (r < rows) {
        const int64_t t = r / s.num_heads;
        const int64_t h = r - t * s.num_heads;
        w[u] =
            merge_weights(prefix_lse[h * s.prefix_lse.head_stride + t * s.prefix_lse.token_stride],
                          suffix_lse[h * s.suffix_lse.head_stride + t * s.suffix_lse.token_stride]);
        if (output_lse != nullptr && threadIdx.x == 0) {
          output_lse[h * s.output_lse.head_stride + t * s.output_lse.token_stride] = w[u].lse;
        }
        out[u] = output + t * s.output.token_stride + h * s.output.head_stride;
        pre[u] = prefix + t * s.prefix.token_stride + h * s.prefix.head_stride;
        suf[u] = suffix + t * s.suffix.token_stride + h * s.suffix.head_stride;
      }
    }
    for (int64_t j = threadIdx.x; j < chunks; j += blockDim.x) {
      Vec<T, N> pv[RPT];
      Vec<T, N> sv[RPT];
#pragma unroll
      for (int u = 0; u < RPT; ++u) {
        if (out[u] != nullptr) {
          // Read whatever the weights: loads that waited for the lse values would put a
          // second memory round trip behind the first (merge_value leaves out a side of
          // weight 0, so what an empty side holds never reaches the output).
          pv[u] = load_vec<T, N>(pre[u] + j * N);
          sv[u] = load_vec<T, N>(suf[u] + j * N);
        }
      }
#pragma unroll
      for (int u = 0; u < RPT; ++u) {
        if (out[u] != nullptr) {
          Vec<T, N> o;
#pragma unroll
          for (int k = 0; k < N; ++k) {
            o.v[k] = from_float<T>(merge_value(w[u], to_float(pv[u].v[k]), to_float(sv[u].v[k])));
          }
          store_packed<T, N>(out[u] + j * N, o);
        }
      }
    }
  }
}

}  // namespace stablekernels::attention::cuda
