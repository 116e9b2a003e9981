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

// In place on query (s.query.num_heads heads per token) and key (s.key.num_heads, 0 when
// key is null). Chunk j of a head is, for NEOX, elements [j*N, j*N + N) of the first half of
// the rotated part and the same elements of the second half (N pairs); otherwise elements
// [j*N, j*N + N) of the rotated part (N / 2 adjacent pairs). A token whose position is
// outside [0, max_position) gets NaN in the rotated part of its heads; the cache is not read
// for it.
template <typename T, typename C, bool NEOX, int N, bool VECTOR, int HPT>
__global__ void __launch_bounds__(kTileMaxThreads)
    rotary_embedding_kernel(const int64_t* __restrict__ positions, T* query, T* key,
                            const C* __restrict__ cache, RotaryShape s) {
  static_assert(NEOX || N % 2 == 0, "an interleaved chunk holds whole pairs");
  constexpr int kPairs = NEOX ? N : N / 2;
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  const int64_t half = s.rot_dim / 2;
  const int64_t chunks = (NEOX ? half : s.rot_dim) / N;
  const int64_t heads = s.query.num_heads + s.key.num_heads;
  const int64_t tile = static_cast<int64_t>(blockDim.y) * HPT;
  for (int64_t token = blockIdx.x; token < s.num_tokens; token += gridDim.x) {
    const int64_t pos = positions[token * s.positions_stride];
    const bool in_range = pos >= 0 && pos < s.max_position;
    const C* cos_row = cache + (in_range ? pos : 0) * s.cache_stride;
    const C* sin_row = cos_row + half;
    for (int64_t h0 = blockIdx.y * tile + threadIdx.y; h0 < heads; h0 += gridDim.y * tile) {
      for (int64_t j = threadIdx.x; j < chunks; j += blockDim.x) {
        float c[kPairs];
        float sn[kPairs];
#pragma unroll
        for (int k = 0; k < kPairs; ++k) {
          c[k] = in_range ? to_float(cos_row[j * kPairs + k]) : kNaN;
          sn[k] = in_range ? to_float(sin_row[j * kPairs + k]) : kNaN;
        }
        T* ptr[HPT];
        Vec<T, N> a[HPT];
        Vec<T, N> b[HPT];
#pragma unroll
        for (int u = 0; u < HPT; ++u) {
          const int64_t h = h0 + static_cast<int64_t>(u) * blockDim.y;
          ptr[u] = nullptr;
          if (h < heads) {
            T* head = h < s.query.num_heads
                          ? query + token * s.query.token_stride + h * s.query.head_stride
                          : key + token * s.key.token_stride +
                                (h - s.query.num_heads) * s.key.head_stride;
            ptr[u] = head + j * N;
            a[u] = load_chunk<T, N, VECTOR>(ptr[u]);
            if constexpr (NEOX) {
              b[u] = load_chunk<T, N, VECTOR>(ptr[u] + half);
            }
          }
        }
#pragma unroll
        for (int u = 0; u < HPT; ++u) {
          if (ptr[u] == nullptr) {
            continue;
          }
          if constexpr (NEOX) {
#pragma unroll
            for (int k = 0; k < N; ++k) {
              float x = to_float(a[u].v[k]);
              float y = to_float(b[u].v[k]);
              rotate_pair(x, y, c[k], sn[k]);
              a[u].v[k] = from_float<T>(x);
              b[u].v[k] = from_float<T>(y);
            }
            store_chunk<T, N, VECTOR>(ptr[u], a[u]);
            store_chunk<T, N, VECTOR>(ptr[u] + half, b[u]);
          } else {
#pragma unroll
            for (int k = 0; k < kPairs; ++k) {
              float x = to_float(a[u].v[2 * k]);
              float y = to_float(a[u].v[2 * k + 1]);
              rotate_pair(x, y, c[k], sn[k]);
              a[u].v[2 * k] = from_float<T>(x);
              a[u].v[2 * k + 1] = from_float<T>(y);
            }
            store_chunk<T, N, VECTOR>(ptr[u], a[u]);
          }
        }
      }
    }
  }
}

}  // namespace stablekernels::rotary::cuda
