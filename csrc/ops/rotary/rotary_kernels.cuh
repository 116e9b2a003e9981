// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA kernel of the rotary family. Torch-free.
//
// One pass over memory: every element of the rotated part of every head is read once and
// written once, N elements per access (16 bytes when the layout allows it); the rest of
// each head is not touched. The cos/sin values of a chunk are loaded once per thread and
// token (every head of a token shares one cache row, so these loads hit L1/L2) and reused
// for the heads the thread rotates. Launch shape: rotary_tuning.h.

#include <cstdint>
#include <limits>

#include "ops/rotary/rotary_math.h"
#include "ops/rotary/rotary_tuning.h"
#include "stablekernels/cuda_common.cuh"
#include "stablekernels/launch.h"

namespace stablekernels::rotary::cuda {

using stablekernels::cuda::from_float;
using stablekernels::cuda::load_vec;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::Vec;

// N consecutive elements at p: one access when VECTOR (p aligned to N elements), else N.
template <typename T, int N, bool VECTOR>
__device__ __forceinline__ Vec<T, N> load_chunk(const T* p) {
  if constexpr (VECTOR) {
    return load_vec<T, N>(p);
  } else {
    Vec<T, N> v;
#pragma unroll
    for (int k = 0; k < N; ++k) {
      v.v[k] = p[k];
    }
    return v;
  }
}

template <typename T, int N, bool VECTOR>
__device__ __forceinline__ void store_chunk(T* p, const Vec<T, N>& v) {
  if constexpr (VECTOR) {
    store_vec<T, N>(p, v);
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) {
      p[k] = v.v[k];
    }
  }
}

// The K cos (or sin) values of a chunk at p, as float32: with accesses of up to 16 bytes
// when `vec` (p, the cache's row stride and half a row are multiples of the access:
// cache_access_bytes), else one by one.
template <typename C, int K>
__device__ __forceinline__ void load_angles(const C* __restrict__ p, bool vec, float (&out)[K]) {
  constexpr int kBytes = K * static_cast<int>(sizeof(C));
  constexpr int kVec = (kBytes < 16 ? kBytes : 16) / static_cast<int>(sizeof(C));
  if (kVec > 1 && vec) {
#pragma unroll
    for (int i = 0; i < K; i += kVec) {
      const Vec<C, kVec> v = load_vec<C, kVec>(p + i);
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        out[i + k] = to_float(v.v[k]);
      }
    }
  } else {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      out[k] = to_float(p[k]);
    }
  }
}

// Chunk j of the heads h0, h0 + blockDim.y, ... (HPT of them; those past the last head are
// loaded, as the last head, and not stored) of one token: its position `pos`, its query and
// key rows at q_token and k_token. For NEOX, chunk j is elements [j*N, j*N + N) of the first
// half of the rotated part and the same elements of the second half (N pairs); otherwise
// elements [j*N, j*N + N) of the rotated part (N / 2 adjacent pairs). A token whose position
// is outside [0, max_position) gets NaN in the rotated part of its heads; the cache is not
// read for it. I: the type of the head and chunk indices and of the offsets within a token
// (int where the launch makes one pass and they fit: rotary_one_pass).
//
// Order of the memory accesses, for latency: the caller issues the position load first,
// then the loads of the heads (their addresses do not depend on the position), then the
// cos/sin loads once the position is in; the range check is a select on the loaded values,
// not a branch, so no head load waits for the position. `cache_vec`: see load_angles.
template <typename T, typename C, bool NEOX, int N, bool VECTOR, int HPT, typename I>
__device__ __forceinline__ void rotate_chunk(int64_t pos, T* q_token, T* k_token, I h0, I j,
                                             const C* __restrict__ cache, const RotaryShape& s,
                                             bool cache_vec) {
  constexpr int kPairs = NEOX ? N : N / 2;
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  const I half = static_cast<I>(s.rot_dim / 2);
  const I q_heads = static_cast<I>(s.query.num_heads);
  const I heads = q_heads + static_cast<I>(s.key.num_heads);
  // Every slot loads (a slot past the last head reloads the last head, which another
  // thread owns, and does not store), so the loads are unconditional: no partial values
  // live across branches.
  T* ptr[HPT];
  Vec<T, N> a[HPT];
  Vec<T, N> b[HPT];
#pragma unroll
  for (int u = 0; u < HPT; ++u) {
    const I h = min(h0 + static_cast<I>(u) * static_cast<I>(blockDim.y), heads - 1);
    T* head = h < q_heads ? q_token + h * static_cast<I>(s.query.head_stride)
                          : k_token + (h - q_heads) * static_cast<I>(s.key.head_stride);
    ptr[u] = head + j * N;
    a[u] = load_chunk<T, N, VECTOR>(ptr[u]);
    if constexpr (NEOX) {
      b[u] = load_chunk<T, N, VECTOR>(ptr[u] + half);
    }
  }
  // A cache with no rows (max_position == 0) has no row to read: every position is out of
  // range. Else an out-of-range token reads row 0 (in bounds) and selects NaN.
  const bool in_range = pos >= 0 && pos < s.max_position;
  float c[kPairs];
  float sn[kPairs];
  if (s.max_position > 0) {
    const C* cos_row = cache + (in_range ? pos : 0) * s.cache_stride + j * kPairs;
    load_angles<C, kPairs>(cos_row, cache_vec, c);
    load_angles<C, kPairs>(cos_row + half, cache_vec, sn);
  }
#pragma unroll
  for (int k = 0; k < kPairs; ++k) {
    c[k] = in_range ? c[k] : kNaN;
    sn[k] = in_range ? sn[k] : kNaN;
  }
#pragma unroll
  for (int u = 0; u < HPT; ++u) {
    if (h0 + static_cast<I>(u) * static_cast<I>(blockDim.y) >= heads) {
      continue;
    }
    Vec<T, N> oa;
    if constexpr (NEOX) {
      Vec<T, N> ob;
#pragma unroll
      for (int k = 0; k < N; ++k) {
        float x = to_float(a[u].v[k]);
        float y = to_float(b[u].v[k]);
        rotate_pair(x, y, c[k], sn[k]);
        oa.v[k] = from_float<T>(x);
        ob.v[k] = from_float<T>(y);
      }
      store_chunk<T, N, VECTOR>(ptr[u], oa);
      store_chunk<T, N, VECTOR>(ptr[u] + half, ob);
    } else {
#pragma unroll
      for (int k = 0; k < kPairs; ++k) {
        float x = to_float(a[u].v[2 * k]);
        float y = to_float(a[u].v[2 * k + 1]);
        rotate_pair(x, y, c[k], sn[k]);
        oa.v[2 * k] = from_float<T>(x);
        oa.v[2 * k + 1] = from_float<T>(y);
      }
      store_chunk<T, N, VECTOR>(ptr[u], oa);
    }
  }
}

// In place on query (s.query.num_heads heads per token) and key (s.key.num_heads, 0 when
// key is null): rotate_chunk on every chunk of every head of every token. ONE_PASS (the
// launch gives each token a thread row of a block, each head group a thread of its tile and
// each chunk a thread: rotary_one_pass): no loops, 32-bit indices within a token. Otherwise
// grid-stride loops over tokens, head tiles and chunks with 64-bit indices.
template <typename T, typename C, bool NEOX, int N, bool VECTOR, int HPT, bool ONE_PASS>
__global__ void __launch_bounds__(kTileMaxThreads, kRotaryPolicy.min_blocks)
    rotary_embedding_kernel(const int64_t* __restrict__ positions, T* query, T* key,
                            const C* __restrict__ cache, RotaryShape s, bool cache_vec) {
  stablekernels::cuda::pdl_enter();
  static_assert(NEOX || N % 2 == 0, "an interleaved chunk holds whole pairs");
  if constexpr (ONE_PASS) {
    const int token = static_cast<int>(blockIdx.x * blockDim.z + threadIdx.z);
    const int h0 = static_cast<int>(blockIdx.y * blockDim.y * HPT + threadIdx.y);
    if (token >= s.num_tokens || h0 >= s.query.num_heads + s.key.num_heads) {
      return;
    }
    const int64_t pos = positions[token * s.positions_stride];
    rotate_chunk<T, C, NEOX, N, VECTOR, HPT, int>(
        pos, query + token * s.query.token_stride, key + token * s.key.token_stride, h0,
        static_cast<int>(threadIdx.x), cache, s, cache_vec);
  } else {
    const int64_t chunks = (NEOX ? s.rot_dim / 2 : s.rot_dim) / N;
    const int64_t heads = s.query.num_heads + s.key.num_heads;
    const int64_t tile = static_cast<int64_t>(blockDim.y) * HPT;
    const int64_t token_step = static_cast<int64_t>(gridDim.x) * blockDim.z;
    for (int64_t token = static_cast<int64_t>(blockIdx.x) * blockDim.z + threadIdx.z;
         token < s.num_tokens; token += token_step) {
      const int64_t pos = positions[token * s.positions_stride];
      T* const q_token = query + token * s.query.token_stride;
      T* const k_token = key + token * s.key.token_stride;
      for (int64_t h0 = blockIdx.y * tile + threadIdx.y; h0 < heads; h0 += gridDim.y * tile) {
        for (int64_t j = threadIdx.x; j < chunks; j += blockDim.x) {
          rotate_chunk<T, C, NEOX, N, VECTOR, HPT, int64_t>(pos, q_token, k_token, h0, j, cache, s,
                                                            cache_vec);
        }
      }
    }
  }
}

}  // namespace stablekernels::rotary::cuda
