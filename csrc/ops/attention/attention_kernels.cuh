// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA kernel of the attention family. Torch-free.
//
// One pass over memory: each element of the two partial results is read once and each
// output element written once, N elements per access (16 bytes when the layout allows it);
// the lse values are read once per row and thread. Launch shape: attention_tuning.h.

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ops/attention/attention_math.h"
#include "stablekernels/cuda_common.cuh"
#include "stablekernels/launch.h"

namespace stablekernels::attention::cuda {

using stablekernels::cuda::from_float;
using stablekernels::cuda::load_packed;
using stablekernels::cuda::packed_t;
using stablekernels::cuda::store_packed;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::unpack;
using stablekernels::cuda::Vec;

// One float, issued where it is written (see load_packed): merge_weights tests the prefix
// lse for NaN first, and the compiler moved the suffix lse load behind that test, a second
// round trip after the first.
__device__ __forceinline__ float load_lse(const float* p) {
  float f;
  asm volatile("ld.global.nc.f32 %0, [%1];" : "=f"(f) : "l"(p));
  return f;
}

// The merged vector of one access: merge_value per element. Rows where both sides have
// a nonzero weight (the usual case) take the short form, one multiply and one fma per
// element; a row with an empty side (or NaN weights) keeps merge_value's selects, so an
// empty side's values still never reach the output. The test is uniform over a row.
template <typename T, int N>
__device__ __forceinline__ Vec<T, N> merge_vec(const MergeWeights& w, const Vec<T, N>& p,
                                               const Vec<T, N>& s) {
  Vec<T, N> o;
  if (w.prefix != 0.0f && w.suffix != 0.0f) {
#pragma unroll
    for (int k = 0; k < N; ++k) {
      o.v[k] = from_float<T>(w.prefix * to_float(p.v[k]) + w.suffix * to_float(s.v[k]));
    }
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) {
      o.v[k] = from_float<T>(merge_value(w, to_float(p.v[k]), to_float(s.v[k])));
    }
  }
  return o;
}

// output [num_tokens, num_heads, head_size] = merge of prefix and suffix (same shape) by
// the weights of merge_weights(prefix_lse[h, t], suffix_lse[h, t]); output_lse[h, t] (when
// not null) = the merged lse. Row r is (t, h) = (r / num_heads, r % num_heads): token-major,
// so a tile's rows lie back to back in the three large tensors (the lse values, 4 bytes a
// row, are the ones read with a stride).
//
// A thread issues its first access's data loads together with the two lse loads, before
// the weights are computed: written as one loop after the weights, the data loads were
// scheduled behind the lse-dependent branches (SASS: LDG of the data after the FSETP on
// the lse values), so every thread paid two memory round trips one after the other and
// only half of its time had data loads in flight. The weights are then computed while
// the data loads are outstanding.
template <typename T, int N, int RPT, int APT>
__global__ void __launch_bounds__(kTileMaxThreads)
    merge_attn_states_kernel(T* output, float* output_lse, const T* prefix,
                             const float* __restrict__ prefix_lse, const T* suffix,
                             const float* __restrict__ suffix_lse, MergeShape s) {
  stablekernels::cuda::pdl_enter();
  using P = packed_t<T, N>;
  const int64_t rows = s.num_heads * s.num_tokens;
  const int64_t chunks = s.head_size / N;
  const int64_t tile = static_cast<int64_t>(blockDim.y) * RPT;
  const int64_t j0 = threadIdx.x;
  for (int64_t r0 = blockIdx.x * tile + threadIdx.y; r0 < rows; r0 += gridDim.x * tile) {
    float lp[RPT];
    float ls[RPT];
    int64_t lse_t[RPT];
    int64_t lse_h[RPT];
    T* out[RPT];
    const T* pre[RPT];
    const T* suf[RPT];
    P pv[RPT][APT];
    P sv[RPT][APT];
    // Which of the RPT rows exist. Not `out[u] != nullptr`: an empty output (head_size 0)
    // may have a null base, and its lse must still be written.
    bool live[RPT];
    // Every load of the first APT accesses (and the lse values) first, nothing waiting on
    // them.
#pragma unroll
    for (int u = 0; u < RPT; ++u) {
      const int64_t r = r0 + static_cast<int64_t>(u) * blockDim.y;
      live[u] = r < rows;
      if (live[u]) {
        const int64_t t = r / s.num_heads;
        const int64_t h = r - t * s.num_heads;
        lse_t[u] = t;
        lse_h[u] = h;
        lp[u] = load_lse(prefix_lse + h * s.prefix_lse.head_stride + t * s.prefix_lse.token_stride);
        ls[u] = load_lse(suffix_lse + h * s.suffix_lse.head_stride + t * s.suffix_lse.token_stride);
        out[u] = output + t * s.output.token_stride + h * s.output.head_stride;
        pre[u] = prefix + t * s.prefix.token_stride + h * s.prefix.head_stride;
        suf[u] = suffix + t * s.suffix.token_stride + h * s.suffix.head_stride;
#pragma unroll
        for (int a = 0; a < APT; ++a) {
          const int64_t j = j0 + a * static_cast<int64_t>(blockDim.x);
          if (j < chunks) {
            // Read whatever the weights (merge_vec leaves out a side of weight 0, so what
            // an empty side holds never reaches the output).
            pv[u][a] = load_packed<T, N>(pre[u] + j * N);
            sv[u][a] = load_packed<T, N>(suf[u] + j * N);
          }
        }
      }
    }
    MergeWeights w[RPT];
#pragma unroll
    for (int u = 0; u < RPT; ++u) {
      if (live[u]) {
        w[u] = merge_weights(lp[u], ls[u]);
        if (output_lse != nullptr && threadIdx.x == 0) {
          output_lse[lse_h[u] * s.output_lse.head_stride + lse_t[u] * s.output_lse.token_stride] =
              w[u].lse;
        }
      }
    }
#pragma unroll
    for (int u = 0; u < RPT; ++u) {
#pragma unroll
      for (int a = 0; a < APT; ++a) {
        const int64_t j = j0 + a * static_cast<int64_t>(blockDim.x);
        if (live[u] && j < chunks) {
          store_packed<T, N>(out[u] + j * N,
                             merge_vec<T, N>(w[u], unpack<T, N>(pv[u][a]), unpack<T, N>(sv[u][a])));
        }
      }
    }
    // Rows of more accesses than the block covers (more than APT x its width: with the
    // policy's 2 x 256, head_size > 512 N).
    for (int64_t j = j0 + APT * static_cast<int64_t>(blockDim.x); j < chunks; j += blockDim.x) {
#pragma unroll
      for (int u = 0; u < RPT; ++u) {
        if (live[u]) {
          pv[u][0] = load_packed<T, N>(pre[u] + j * N);
          sv[u][0] = load_packed<T, N>(suf[u] + j * N);
        }
      }
#pragma unroll
      for (int u = 0; u < RPT; ++u) {
        if (live[u]) {
          store_packed<T, N>(out[u] + j * N,
                             merge_vec<T, N>(w[u], unpack<T, N>(pv[u][0]), unpack<T, N>(sv[u][0])));
        }
      }
    }
  }
}

}  // namespace stablekernels::attention::cuda
