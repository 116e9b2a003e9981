// SPDX-License-Identifier: Apache-2.0
#pragma once
// sampling_kernels.cuh: CUDA kernels of the sampling family. Torch-free.

#include <cstdint>

#include "ops/sampling/sampling_math.h"
#include "stablekernels/cuda_common.cuh"

namespace stablekernels::sampling::cuda {

using stablekernels::cuda::from_float;
using stablekernels::cuda::load_vec;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::Vec;

// ---- apply_repetition_penalties_ ---------------------------------------------------------

constexpr int kPenaltyThreads = 256;
// 16-byte vectors a thread has in flight per loop iteration.
constexpr int kPenaltyUnroll = 4;

// The mask bytes of one VEC-element vector, read as one access.
template <int VEC>
struct MaskWord;
template <>
struct MaskWord<4> {
  using type = uint32_t;
};
template <>
struct MaskWord<8> {
  using type = unsigned long long;
};

template <typename T>
__device__ __forceinline__ void penalize_one(T* x, const uint8_t* pm, const uint8_t* om,
                                             int64_t j, float pen) {
  if ((pm[j] | om[j]) != 0) {
    x[j] = from_float<T>(penalize(to_float(x[j]), pen));
  }
}

// logits [rows, vocab] (row stride logits_stride), masks [rows, vocab] (their own row strides),
// penalties [rows]. grid.x walks the rows, grid.y the chunks of `chunk_elems` elements of a row
// (`chunks` of them; chunk_elems is a multiple of VEC). A row whose logits and masks can be
// brought to VEC-element alignment by the same offset `lead` goes VEC elements per access (16
// bytes of logits, VEC bytes of each mask), its first `lead` and last few elements one at a
// time; the other rows go one element at a time. Logits are only read and written where a mask
// is set, and a row whose penalty is exactly 1 is skipped (the op would not change it).
template <typename T, int VEC>
__global__ void __launch_bounds__(kPenaltyThreads)
    repetition_penalty_kernel(T* __restrict__ logits, int64_t logits_stride,
                              const uint8_t* __restrict__ prompt, int64_t prompt_stride,
                              const uint8_t* __restrict__ output, int64_t output_stride,
                              const float* __restrict__ penalties, int64_t penalty_stride,
                              int64_t rows, int64_t vocab, int64_t chunk_elems, int64_t chunks) {
  using MaskT = typename MaskWord<VEC>::type;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float pen = penalties[row * penalty_stride];
    if (pen == 1.0f) {
      continue;
    }
    T* x = logits + row * logits_stride;
    const uint8_t* pm = prompt + row * prompt_stride;
    const uint8_t* om = output + row * output_stride;
    // Elements before x is 16-byte aligned.
    const int64_t mis = static_cast<int64_t>((reinterpret_cast<uintptr_t>(x) % 16) / sizeof(T));
    int64_t lead = mis == 0 ? 0 : VEC - mis;
    lead = lead < vocab ? lead : vocab;
    const bool vec_ok = reinterpret_cast<uintptr_t>(pm + lead) % VEC == 0 &&
                        reinterpret_cast<uintptr_t>(om + lead) % VEC == 0;
    for (int64_t c = blockIdx.y; c < chunks; c += gridDim.y) {
      const int64_t lo = c * chunk_elems;
      if (!vec_ok) {
        const int64_t hi = lo + chunk_elems < vocab ? lo + chunk_elems : vocab;
        for (int64_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
          penalize_one(x, pm, om, j, pen);
        }
        continue;
      }
      const int64_t nvec = (vocab - lead) / VEC;
      if (c == 0 && threadIdx.x < VEC) {
        // the unaligned head and the tail shorter than a vector
        const int64_t tail = lead + nvec * VEC + threadIdx.x;
        if (threadIdx.x < lead) {
          penalize_one(x, pm, om, threadIdx.x, pen);
        }
        if (tail < vocab) {
          penalize_one(x, pm, om, tail, pen);
        }
      }
      T* xv = x + lead;
      const uint8_t* pv = pm + lead;
      const uint8_t* ov = om + lead;
      const int64_t vlo = lo / VEC;
      const int64_t vend = (lo + chunk_elems) / VEC;
      const int64_t vhi = vend < nvec ? vend : nvec;
      for (int64_t v0 = vlo + threadIdx.x; v0 < vhi;
           v0 += static_cast<int64_t>(blockDim.x) * kPenaltyUnroll) {
        MaskT m[kPenaltyUnroll];
#pragma unroll
        for (int u = 0; u < kPenaltyUnroll; ++u) {
          const int64_t v = v0 + static_cast<int64_t>(u) * blockDim.x;
          m[u] = 0;
          if (v < vhi) {
            m[u] = *reinterpret_cast<const MaskT*>(pv + v * VEC) |
                   *reinterpret_cast<const MaskT*>(ov + v * VEC);
          }
        }
        Vec<T, VEC> val[kPenaltyUnroll];
#pragma unroll
        for (int u = 0; u < kPenaltyUnroll; ++u) {
          if (m[u] != 0) {
            val[u] = load_vec<T, VEC>(xv + (v0 + static_cast<int64_t>(u) * blockDim.x) * VEC);
          }
        }
#pragma unroll
        for (int u = 0; u < kPenaltyUnroll; ++u) {
          if (m[u] != 0) {
#pragma unroll
            for (int e = 0; e < VEC; ++e) {
              if (((m[u] >> (8 * e)) & 0xFFu) != 0) {
                val[u].v[e] = from_float<T>(penalize(to_float(val[u].v[e]), pen));
              }
            }
            store_vec<T, VEC>(xv + (v0 + static_cast<int64_t>(u) * blockDim.x) * VEC, val[u]);
          }
        }
      }
    }
  }
}

// ---- top_k_per_row -----------------------------------------------------------------------

// Block sizes: rows with few rows per SM get the larger block (more loads in flight per row).
constexpr int kTopKThreadsSmall = 512;
constexpr int kTopKThreadsLarge = 1024;
// 16-byte vectors a thread has in flight per loop iteration.
constexpr int kTopKUnroll = 4;
// Radix select over the 32-bit order key: three passes of 11, 11 and 10 bits.
constexpr int kTopKBins = 2048;

// Calls f(value, j) for each element j of x[0, n), each once, spread over the THREADS threads
// of the block. The elements from the first 16-byte boundary on are read as float4 (x only
// needs the 4-byte alignment of any float32 tensor); the few before it and after the last
// whole vector one at a time.
template <int THREADS, typename F>
__device__ __forceinline__ void for_each_in_row(const float* __restrict__ x, int64_t n,
                                                const F& f) {
  const int tid = threadIdx.x;
  const auto mis = static_cast<int64_t>((reinterpret_cast<uintptr_t>(x) % 16) / sizeof(float));
  int64_t lead = mis == 0 ? 0 : 4 - mis;
  lead = lead < n ? lead : n;
  const int64_t nvec = (n - lead) / 4;
  const int64_t tail = lead + nvec * 4;  // n - tail < 4
  if (tid < lead) {
    f(x[tid], static_cast<int64_t>(tid));
  }
  if (tid < n - tail) {
    f(x[tail + tid], tail + tid);
  }
  const auto* xv = reinterpret_cast<const float4*>(x + lead);
  for (int64_t base = 0; base < nvec; base += static_cast<int64_t>(THREADS) * kTopKUnroll) {
    float4 v[kTopKUnroll];
#pragma unroll
    for (int u = 0; u < kTopKUnroll; ++u) {
      const int64_t i = base + u * THREADS + tid;
      v[u] = i < nvec ? xv[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
#pragma unroll
    for (int u = 0; u < kTopKUnroll; ++u) {
      const int64_t i = base + u * THREADS + tid;
      if (i < nvec) {
        const int64_t j = lead + 4 * i;
        f(v[u].x, j);
        f(v[u].y, j + 1);
        f(v[u].z, j + 2);
        f(v[u].w, j + 3);
      }
    }
  }
}

// One block per row (grid-stride over the rows). A row of at most k columns is copied as is
// (then -1s). A longer one: up to three histogram passes over the row find the key of its
// k-th largest element digit by digit (a pass stops the search early when the whole bin of
// the k-th element is taken); a last pass writes the columns of the elements whose key is
// above that digit prefix, each to a slot taken from a shared counter, and fills the remaining
// slots with as many of the elements on the prefix as are needed.
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    top_k_per_row_kernel(const float* __restrict__ logits, int64_t logits_stride, int64_t cols,
                         const int32_t* __restrict__ starts, int64_t starts_stride,
                         const int32_t* __restrict__ ends, int64_t ends_stride,
                         int32_t* __restrict__ indices, int64_t indices_stride, int64_t rows,
                         int k) {
  static_assert(kTopKBins % THREADS == 0, "each thread owns a whole number of bins");
  constexpr int kBinsPerThread = kTopKBins / THREADS;
  __shared__ uint32_t hist[kTopKBins];
  __shared__ uint32_t suffix[THREADS];
  __shared__ uint32_t sel_bin;
  __shared__ uint32_t sel_greater;
  __shared__ uint32_t sel_count;
  __shared__ uint32_t n_above;
  __shared__ uint32_t n_on;
  const int tid = threadIdx.x;
  const auto uk = static_cast<uint32_t>(k);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const ColumnRange range =
        clamp_range(starts[row * starts_stride], ends[row * ends_stride], cols);
    const int64_t n = range.end - range.start;
    int32_t* out = indices + row * indices_stride;
    if (n <= k) {
      for (int j = tid; j < k; j += THREADS) {
        out[j] = j < n ? static_cast<int32_t>(range.start + j) : -1;
      }
      continue;  // no shared memory used: no barrier needed
    }
    const float* x = logits + row * logits_stride + range.start;
    uint32_t prefix = 0;  // the digits of the k-th key found so far
    uint32_t pmask = 0;   // the bits of those digits
    uint32_t krem = uk;   // elements still to take among those on the prefix
    for (int pass = 0; pass < 3; ++pass) {
      const int shift = pass == 0 ? 21 : (pass == 1 ? 10 : 0);
      const uint32_t digit = pass == 2 ? 0x3FFu : 0x7FFu;
      for (int b = tid; b < kTopKBins; b += THREADS) {
        hist[b] = 0;
      }
      __syncthreads();
      for_each_in_row<THREADS>(x, n, [&](float v, int64_t) {
        const uint32_t key = order_key(v);
        if ((key & pmask) == prefix) {
          atomicAdd(&hist[(key >> shift) & digit], 1u);
        }
      });
      __syncthreads();
      // Counts of the elements above each bin: a suffix sum over the threads' bins.
      uint32_t c[kBinsPerThread];
      uint32_t local = 0;
#pragma unroll
      for (int i = 0; i < kBinsPerThread; ++i) {
        c[i] = hist[tid * kBinsPerThread + i];
        local += c[i];
      }
      suffix[tid] = local;
      __syncthreads();
      for (int off = 1; off < THREADS; off <<= 1) {
        const uint32_t add = tid + off < THREADS ? suffix[tid + off] : 0u;
        __syncthreads();
        suffix[tid] += add;
        __syncthreads();
      }
      uint32_t greater = suffix[tid] - local;  // elements in the bins of higher threads
#pragma unroll
      for (int i = kBinsPerThread - 1; i >= 0; --i) {
        // exactly one bin holds the krem-th largest element
        if (greater < krem && greater + c[i] >= krem) {
          sel_bin = static_cast<uint32_t>(tid * kBinsPerThread + i);
          sel_greater = greater;
          sel_count = c[i];
        }
        greater += c[i];
      }
      __syncthreads();
      const uint32_t bin = sel_bin;
      const uint32_t count = sel_count;
      prefix |= bin << shift;
      pmask |= digit << shift;
      krem -= sel_greater;
      __syncthreads();  // sel_* read by all before a later pass writes them
      if (count == krem) {
        break;  // the whole bin is taken: no need to find the exact k-th key
      }
    }
    if (tid == 0) {
      n_above = 0;
      n_on = 0;
    }
    __syncthreads();
    const uint32_t n_greater = uk - krem;  // elements above the prefix, exactly
    const int64_t start = range.start;
    for_each_in_row<THREADS>(x, n, [&](float v, int64_t j) {
      const uint32_t key = order_key(v) & pmask;
      if (key > prefix) {
        out[atomicAdd(&n_above, 1u)] = static_cast<int32_t>(start + j);
      } else if (key == prefix) {
        const uint32_t e = atomicAdd(&n_on, 1u);
        if (e < krem) {
          out[n_greater + e] = static_cast<int32_t>(start + j);
        }
      }
    });
    __syncthreads();  // the counters and the histogram are reused by the next row
  }
}

}  // namespace stablekernels::sampling::cuda
