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
__device__ __forceinline__ void penalize_one(T* x, const uint8_t* pm, const uint8_t* om, int64_t j,
                                             float pen) {
  if ((pm[j] | om[j]) != 0) {
    x[j] = from_float<T>(penalize(to_float(x[j]), pen));
  }
}

// logits [rows, vocab] (row stride logits_stride), masks [rows, vocab] (their own row strides),
// penalties [rows] (float or T). grid.x walks the rows, grid.y the chunks of `chunk_elems` elements
// of a row
// (`chunks` of them; chunk_elems is a multiple of VEC). A row whose logits and masks can be
// brought to VEC-element alignment by the same offset `lead` goes VEC elements per access (16
// bytes of logits, VEC bytes of each mask), its first `lead` and last few elements one at a
// time; the other rows go one element at a time. Logits are only read and written where a mask
// is set, and a row whose penalty is exactly 1 is skipped (the op would not change it).
template <typename T, int VEC, typename P>
__global__ void __launch_bounds__(kPenaltyThreads)
    repetition_penalty_kernel(T* __restrict__ logits, int64_t logits_stride,
                              const uint8_t* __restrict__ prompt, int64_t prompt_stride,
                              const uint8_t* __restrict__ output, int64_t output_stride,
                              const P* __restrict__ penalties, int64_t penalty_stride, int64_t rows,
                              int64_t vocab, int64_t chunk_elems, int64_t chunks) {
  using MaskT = typename MaskWord<VEC>::type;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float pen = to_float(penalties[row * penalty_stride]);
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
// Elements on the first digit kept in shared memory (more: every pass reads the row).
constexpr int kTopKCandidates = 4096;

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

// Shared memory of top_k_per_row_kernel (the block-size dependent scan buffer aside).
struct TopKShared {
  uint32_t hist[kTopKBins];
  uint32_t cand_key[kTopKCandidates];  // the elements on the first digit, when they fit
  int32_t cand_col[kTopKCandidates];   // their columns, relative to the row's start
  uint32_t sel_bin;
  uint32_t sel_greater;
  uint32_t sel_count;
  uint32_t n_above;  // slots taken by elements above the final prefix
  uint32_t n_on;     // elements seen on the final prefix
  uint32_t n_cand;
};

// One radix pass: histograms the digit `pass` (11, 11 or 10 bits from the top) of the keys
// visit() yields that are on the current prefix, then moves the prefix to the bin that holds
// the krem-th largest of them and subtracts from krem the elements of the bins above it.
// Returns the number of elements in that bin. Called by every thread of the block; visit(g)
// calls g(key, column) for each element, each once, over the threads.
template <int THREADS, typename Visit>
__device__ __forceinline__ uint32_t radix_pass(int pass, const Visit& visit, uint32_t& prefix,
                                               uint32_t& pmask, uint32_t& krem, TopKShared& sh,
                                               uint32_t* suffix) {
  static_assert(kTopKBins % THREADS == 0, "each thread owns a whole number of bins");
  constexpr int kBinsPerThread = kTopKBins / THREADS;
  const int tid = threadIdx.x;
  const int shift = pass == 0 ? 21 : (pass == 1 ? 10 : 0);
  const uint32_t digit = pass == 2 ? 0x3FFu : 0x7FFu;
  for (int b = tid; b < kTopKBins; b += THREADS) {
    sh.hist[b] = 0;
  }
  __syncthreads();
  const uint32_t pre = prefix;
  const uint32_t msk = pmask;
  visit([&](uint32_t key, int64_t) {
    if ((key & msk) == pre) {
      atomicAdd(&sh.hist[(key >> shift) & digit], 1u);
    }
  });
  __syncthreads();
  // Counts of the elements above each bin: a suffix sum over the threads' bins.
  uint32_t c[kBinsPerThread];
  uint32_t local = 0;
#pragma unroll
  for (int i = 0; i < kBinsPerThread; ++i) {
    c[i] = sh.hist[tid * kBinsPerThread + i];
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
      sh.sel_bin = static_cast<uint32_t>(tid * kBinsPerThread + i);
      sh.sel_greater = greater;
      sh.sel_count = c[i];
    }
    greater += c[i];
  }
  __syncthreads();
  prefix |= sh.sel_bin << shift;
  pmask |= digit << shift;
  krem -= sh.sel_greater;
  const uint32_t count = sh.sel_count;
  __syncthreads();  // sel_* read by all before a later pass writes them
  return count;
}

// One block per row (grid-stride over the rows). A row of at most k columns is copied as is
// (then -1s). A longer one is searched for the key of its k-th largest element, digit by digit
// (radix_pass), stopping early once the whole bin of that element is taken. The first pass
// reads the row; when the elements on the first digit fit in shared memory, a second read
// writes the elements above that digit to the output and keeps those on it, and the search
// and the final gather go on in shared memory. Otherwise every pass and the gather read the
// row. The gather writes the elements above the final prefix to slots taken from a shared
// counter, then as many of the elements on the prefix as are still needed.
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    top_k_per_row_kernel(const float* __restrict__ logits, int64_t logits_stride, int64_t cols,
                         const int32_t* __restrict__ starts, int64_t starts_stride,
                         const int32_t* __restrict__ ends, int64_t ends_stride,
                         int32_t* __restrict__ indices, int64_t indices_stride, int64_t rows,
                         int k) {
  __shared__ TopKShared sh;
  __shared__ uint32_t suffix[THREADS];
  const int tid = threadIdx.x;
  const auto uk = static_cast<uint32_t>(k);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const ColumnRange range =
        clamp_range(starts[row * starts_stride], ends[row * ends_stride], cols);
    const int64_t n = range.end - range.start;
    const int64_t start = range.start;
    int32_t* out = indices + row * indices_stride;
    if (n <= k) {
      for (int j = tid; j < k; j += THREADS) {
        out[j] = j < n ? static_cast<int32_t>(start + j) : -1;
      }
      continue;  // no shared memory used: no barrier needed
    }
    const float* x = logits + row * logits_stride + start;
    const auto from_row = [&](const auto& g) {
      for_each_in_row<THREADS>(x, n, [&](float v, int64_t j) { g(order_key(v), j); });
    };
    const auto from_candidates = [&](const auto& g) {
      const auto nc = static_cast<int>(sh.n_cand);
      for (int i = tid; i < nc; i += THREADS) {
        g(sh.cand_key[i], static_cast<int64_t>(sh.cand_col[i]));
      }
    };
    uint32_t prefix = 0;  // the digits of the k-th key found so far
    uint32_t pmask = 0;   // the bits of those digits
    uint32_t krem = uk;   // elements still to take among those on the prefix
    const uint32_t count0 = radix_pass<THREADS>(0, from_row, prefix, pmask, krem, sh, suffix);
    if (tid == 0) {
      sh.n_above = 0;
      sh.n_on = 0;
      sh.n_cand = 0;
    }
    __syncthreads();
    const auto gather = [&](uint32_t key, int64_t j) {
      const uint32_t m = key & pmask;
      if (m > prefix) {
        out[atomicAdd(&sh.n_above, 1u)] = static_cast<int32_t>(start + j);
      } else if (m == prefix) {
        const uint32_t e = atomicAdd(&sh.n_on, 1u);
        if (e < krem) {
          out[uk - krem + e] = static_cast<int32_t>(start + j);
        }
      }
    };
    if (count0 != krem && count0 <= static_cast<uint32_t>(kTopKCandidates)) {
      // Second read: above the first digit -> output; on it -> shared memory (count0 of them).
      const uint32_t pre0 = prefix;
      const uint32_t msk0 = pmask;
      from_row([&](uint32_t key, int64_t j) {
        const uint32_t m = key & msk0;
        if (m > pre0) {
          out[atomicAdd(&sh.n_above, 1u)] = static_cast<int32_t>(start + j);
        } else if (m == pre0) {
          const uint32_t i = atomicAdd(&sh.n_cand, 1u);
          sh.cand_key[i] = key;
          sh.cand_col[i] = static_cast<int32_t>(j);
        }
      });
      __syncthreads();
      for (int pass = 1; pass < 3; ++pass) {
        if (radix_pass<THREADS>(pass, from_candidates, prefix, pmask, krem, sh, suffix) == krem) {
          break;
        }
      }
      from_candidates(gather);
    } else {
      if (count0 != krem) {
        for (int pass = 1; pass < 3; ++pass) {
          if (radix_pass<THREADS>(pass, from_row, prefix, pmask, krem, sh, suffix) == krem) {
            break;
          }
        }
      }
      from_row(gather);
    }
    __syncthreads();  // shared memory is reused by the next row
  }
}

}  // namespace stablekernels::sampling::cuda
