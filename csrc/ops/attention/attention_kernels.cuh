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
#include "ops/attention/attention_tuning.h"
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
// not null) = the merged lse. Rows are visited in tiles of kMergeTileTokens tokens x all
// heads (MergeRows): row r of the walk is tile g = r / tile_rows, then head-major within
// the tile (q = r % tile_rows: head q / kMergeTileTokens, token g * kMergeTileTokens +
// q % kMergeTileTokens). The rows of a warp are consecutive tokens of one head, so its lse
// loads fall in one 32-byte sector (token-major rows put them in as many sectors as rows),
// and the tile's rows are still one contiguous stretch of the three large tensors. Rows of
// the last tile past num_tokens are skipped.
//
// A thread issues its first APT accesses' data loads together with the two lse loads,
// before the weights are computed: written as one loop after the weights, the data loads
// were scheduled behind the lse-dependent branches (SASS: LDG of the data after the FSETP
// on the lse values), so every thread paid two memory round trips one after the other and
// only half of its time had data loads in flight. The weights are then computed while the
// data loads are outstanding. I is the index type: uint32_t where every element offset of
// the call is below 2^31 (no 64-bit multiplies or divisions), int64_t otherwise.
template <typename T, int N, int APT, typename I>
__global__ void __launch_bounds__(kTileMaxThreads)
    merge_attn_states_kernel(T* output, float* output_lse, const T* prefix,
                             const float* __restrict__ prefix_lse, const T* suffix,
                             const float* __restrict__ suffix_lse, MergeRows<I> s) {
  stablekernels::cuda::pdl_enter();
  using P = packed_t<T, N>;
  const I j0 = threadIdx.x;
  const I step = static_cast<I>(gridDim.x) * static_cast<I>(blockDim.y);
  for (I r = static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.y) + threadIdx.y; r < s.rows;
       r += step) {
    const I g = s.tile_of(r);
    const I q = r - g * s.tile_rows;
    const I h = q / kMergeTileTokens;
    const I t = g * kMergeTileTokens + q % kMergeTileTokens;
    if (t >= s.num_tokens) {
      continue;
    }
    const float lp = load_lse(prefix_lse + (h * s.prefix_lse.h + t * s.prefix_lse.t));
    const float ls = load_lse(suffix_lse + (h * s.suffix_lse.h + t * s.suffix_lse.t));
    T* out = output + (t * s.output.t + h * s.output.h);
    const T* pre = prefix + (t * s.prefix.t + h * s.prefix.h);
    const T* suf = suffix + (t * s.suffix.t + h * s.suffix.h);
    P pv[APT];
    P sv[APT];
    // Every load of the first APT accesses (and the lse values) first, nothing waiting on
    // them. Read whatever the weights (merge_vec leaves out a side of weight 0, so what an
    // empty side holds never reaches the output).
#pragma unroll
    for (int a = 0; a < APT; ++a) {
      const I j = j0 + static_cast<I>(a) * blockDim.x;
      if (j < s.chunks) {
        pv[a] = load_packed<T, N>(pre + j * N);
        sv[a] = load_packed<T, N>(suf + j * N);
      }
    }
    const MergeWeights w = merge_weights(lp, ls);
    if (output_lse != nullptr && threadIdx.x == 0) {
      output_lse[h * s.output_lse.h + t * s.output_lse.t] = w.lse;
    }
#pragma unroll
    for (int a = 0; a < APT; ++a) {
      const I j = j0 + static_cast<I>(a) * blockDim.x;
      if (j < s.chunks) {
        store_packed<T, N>(out + j * N,
                           merge_vec<T, N>(w, unpack<T, N>(pv[a]), unpack<T, N>(sv[a])));
      }
    }
    // Rows of more accesses than the block covers (more than APT x its width: with the
    // policy's 2 x 256, head_size > 512 N).
    for (I j = j0 + static_cast<I>(APT) * blockDim.x; j < s.chunks; j += blockDim.x) {
      pv[0] = load_packed<T, N>(pre + j * N);
      sv[0] = load_packed<T, N>(suf + j * N);
      store_packed<T, N>(out + j * N, merge_vec<T, N>(w, unpack<T, N>(pv[0]), unpack<T, N>(sv[0])));
    }
  }
}

}  // namespace stablekernels::attention::cuda
