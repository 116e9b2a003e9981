// SPDX-License-Identifier: Apache-2.0
#pragma once
// sampling_kernels.cuh: CUDA kernels of the sampling family. Torch-free.

#include <cstdint>
#include <cstring>

#include "ops/sampling/sampling_math.h"
#include "stablekernels/cuda_common.cuh"

namespace stablekernels::sampling::cuda {

using stablekernels::cuda::from_float;
using stablekernels::cuda::load_vec;
using stablekernels::cuda::pack2;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::store_words;
using stablekernels::cuda::store_words_if;
using stablekernels::cuda::to_float;
using stablekernels::cuda::unpack2;
using stablekernels::cuda::Vec;

// ---- apply_repetition_penalties_ ---------------------------------------------------------

constexpr int kPenaltyThreads = 256;
// 16-byte vectors of logits a thread has in flight per tile: kPenaltyUnroll for the large
// grids, 1 where the rows are few (decode: the vectors spread over more blocks and SMs).
constexpr int kPenaltyUnroll = 4;
// Blocks of kPenaltyThreads resident per SM (__launch_bounds__: at most 64 registers a
// thread).
constexpr int kPenaltyBlocksPerSm = 4;
// Threads of repetition_penalty_rows_kernel's blocks (256: 256 x 128256 bf16 46.3 us, one
// vector a thread; 128: 46.0).
constexpr int kPenaltyRowThreads = 128;

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

// One element: its logit and both mask bytes are loaded independently (no load waits for
// another), the logit is stored only where a mask is set.
template <typename T>
__device__ __forceinline__ void penalize_one(T* x, const uint8_t* pm, const uint8_t* om, int64_t j,
                                             float pen) {
  const T v = x[j];
  if ((pm[j] | om[j]) != 0) {
    x[j] = from_float<T>(penalize(to_float(v), pen));
  }
}

// ---- x / p without a division per element ------------------------------------------------
//
// An IEEE division x / p is ~10 SASS instructions and a range check (FCHK) with a branch to a
// slow path, for every element: most of the kernel's instructions, which bound it when the
// data sits in L2 (decode). Here y = 1 / p is computed once per tile (IEEE, y = RN(1/p)) and
// each element takes q0 = RN(x y) and correction steps q' = RN(q + (x - p q) y) (fma):
//  - float32 logits, two steps: q1 is within 1/2 ulp + 2^-22 ulp of x / p, hence faithful, and
//    by Markstein's theorem (y within 1/2 ulp of 1/p, q faithful, x - p q exact by fma) the
//    second step gives RN(x / p).
//  - 16-bit logits, one step: checked exhaustively against x / p for every bfloat16 and float16
//    significand of x and every float32 significand of p (the results scale exactly with the
//    exponents while no intermediate over- or underflows).
// Both need x and p in a range where nothing over- or underflows: x in [2^-64, 2^64] (then
// x - p q, a multiple of 2^(e_x - 46), stays normal) and p in [2^-32, 2^32]. A row whose p is
// outside, and a vector with a positive logit outside, take the IEEE division.
constexpr float kFastPenaltyMin = 0x1p-32f;
constexpr float kFastPenaltyMax = 0x1p32f;
constexpr uint32_t kFastLogitMinBits = 0x1F800000u;  // 2^-64
constexpr uint32_t kFastLogitMaxBits = 0x5F800000u;  // 2^64

// penalize(x, p) for y = RN(1/p) with STEPS correction steps; sets `slow` where x is positive
// and outside [2^-64, 2^64] (there the result may differ from x / p).
template <int STEPS>
__device__ __forceinline__ float penalize_fast(float x, float p, float y, bool& slow) {
  float q = x * y;
#pragma unroll
  for (int s = 0; s < STEPS; ++s) {
    q = fmaf(y, fmaf(-p, q, x), q);
  }
  const bool pos = x > 0.0f;
  slow |= pos && (__float_as_uint(x) - kFastLogitMinBits) > (kFastLogitMaxBits - kFastLogitMinBits);
  return pos ? q : x * p;
}

// 0xFF in each byte of `m` that is nonzero, 0x00 in the others: the OR of a byte's bits
// folded into its bit 0 (the shifts bring bits of the next byte only into bits 4-7, which
// the later folds do not read), then spread over the byte.
__device__ __forceinline__ uint32_t byte_select(uint32_t m) {
  m |= m >> 4;
  m |= m >> 2;
  m |= m >> 1;
  return (m & 0x01010101u) * 0xFFu;
}

// Penalizes the elements of the WORDS 32-bit words `w` whose byte of `m` (the OR of both
// masks, a byte an element) is nonzero; the others keep their bits. 16-bit elements are
// handled as words of two: each word is penalized whole and its new halves selected bytewise
// (LOP3) from the mask bytes, so the vector stays in WORDS registers (element by element,
// nvcc split 16 bytes into 8 16-bit registers, spilled to local memory at 64 registers, and
// stored them 2 bytes at a time).
template <typename T, int WORDS, typename MaskT, typename F>
__device__ __forceinline__ void select_penalized(uint32_t (&w)[WORDS], MaskT m, F&& penalize_one) {
  static_assert(sizeof(MaskT) * sizeof(T) == WORDS * 4, "a mask byte an element");
  const auto m64 = static_cast<unsigned long long>(m);
  if constexpr (sizeof(T) == 2) {
#pragma unroll
    for (int k = 0; k < WORDS; ++k) {
      const float2 f = unpack2<T>(w[k]);
      const uint32_t p = pack2<T>(penalize_one(f.x), penalize_one(f.y));
      // mask bytes 2k and 2k+1, each spread over its element's two bytes
      const uint32_t sel = __byte_perm(byte_select(static_cast<uint32_t>(m64 >> (32 * (k / 2)))), 0,
                                       (k % 2) != 0 ? 0x3322 : 0x1100);
      w[k] = (p & sel) | (w[k] & ~sel);
    }
  } else {
#pragma unroll
    for (int e = 0; e < WORDS; ++e) {
      const float p = penalize_one(__uint_as_float(w[e]));
      w[e] = ((m64 >> (8 * e)) & 0xFFu) != 0 ? __float_as_uint(p) : w[e];
    }
  }
}

// select_penalized with the IEEE division (penalize).
template <typename T, int WORDS, typename MaskT>
__device__ __forceinline__ void penalize_words_ieee(uint32_t (&w)[WORDS], MaskT m, float pen) {
  select_penalized<T>(w, m, [pen](float x) { return penalize(x, pen); });
}

// A row's penalty and what penalize_words needs of it, worked out once per row or tile:
// y = RN(1/pen) (penalize_fast) and whether pen lies in [kFastPenaltyMin, kFastPenaltyMax].
struct RowPenalty {
  float pen;
  float y;
  bool fast;
};
__device__ __forceinline__ RowPenalty row_penalty(float pen) {
  return {pen, __frcp_rn(pen), pen >= kFastPenaltyMin && pen <= kFastPenaltyMax};
}

// penalize_words_ieee through penalize_fast. Bit-identical to penalize_words_ieee: words with
// an element out of the fast range, or of a row that is not fast, take penalize_words_ieee.
template <typename T, int WORDS, typename MaskT>
__device__ __forceinline__ void penalize_words(uint32_t (&w)[WORDS], MaskT m, const RowPenalty& p) {
  bool slow = !p.fast;
  // float32 needs two correction steps for an exact quotient, 16-bit inputs one
  constexpr int kSteps = sizeof(T) == 2 ? 1 : 2;
  uint32_t r[WORDS];
#pragma unroll
  for (int k = 0; k < WORDS; ++k) {
    r[k] = w[k];
  }
  select_penalized<T>(r, m, [&](float x) { return penalize_fast<kSteps>(x, p.pen, p.y, slow); });
  if (slow) {
    penalize_words_ieee<T>(w, m, p.pen);
  } else {
#pragma unroll
    for (int k = 0; k < WORDS; ++k) {
      w[k] = r[k];
    }
  }
}

// The 16-byte vector v read at x, penalized where its mask bytes m are set, stored back.
template <typename T, int VEC, typename MaskT>
__device__ __forceinline__ void store_penalized(T* x, uint4 v, MaskT m, const RowPenalty& p) {
  uint32_t w[4] = {v.x, v.y, v.z, v.w};
  penalize_words<T>(w, m, p);
  store_words<4>(reinterpret_cast<uint32_t*>(x), w);
}

// logits [rows, vocab] (row stride logits_stride), masks [rows, vocab] (their own row strides),
// penalties [rows] (float or T). The work is cut into tiles of kPenaltyThreads * UNROLL
// vectors of a row (`tiles_per_row` per row); blocks walk the tiles grid-stride (the launch
// gives each block one tile, up to the grid's limit). A row whose logits and masks
// can be brought to VEC-element alignment by the same offset `lead` goes VEC elements per
// access (16 bytes of logits, VEC bytes of each mask), its first `lead` and last few elements
// one at a time; the other rows go one element at a time.
//
// Every logit and mask byte of a vector is loaded at once, unconditionally: loading a logit
// only where a mask was set made each logit load wait for its mask loads (two dependent
// trips to memory, half the bytes in flight). A vector is stored only if one of its masks is
// set, with its unmasked elements as read (their bits unchanged). A row whose penalty is
// exactly 1 is not written (the op would not change it).
//
// The penalty of a tile is a load of its own: the penalty of a block's next tile is loaded
// while the block works on the current one. SPECULATIVE (decode: each block has one tile of
// one vector a thread): the logits and masks are loaded along with the penalty, not after
// it, and a row of penalty 1 is read but not written; else a row of penalty 1 is not read
// either.
template <typename T, int VEC, int UNROLL, bool SPECULATIVE, typename P>
__global__ void __launch_bounds__(kPenaltyThreads, kPenaltyBlocksPerSm)
    repetition_penalty_kernel(T* __restrict__ logits, int64_t logits_stride,
                              const uint8_t* __restrict__ prompt, int64_t prompt_stride,
                              const uint8_t* __restrict__ output, int64_t output_stride,
                              const P* __restrict__ penalties, int64_t penalty_stride, int64_t rows,
                              int64_t vocab, int64_t tiles_per_row) {
  stablekernels::cuda::pdl_enter();
  using MaskT = typename MaskWord<VEC>::type;
  constexpr int64_t kTileVecs = static_cast<int64_t>(kPenaltyThreads) * UNROLL;
  const int64_t tiles = rows * tiles_per_row;
  int64_t tile = blockIdx.x;
  if (tile >= tiles) {
    return;
  }
  // The row of a tile: a 32-bit division (~10 instructions) wherever the tile count allows,
  // not the 64-bit one (a call of ~70, ahead of the penalty's load).
  const bool tiles32 = tiles <= static_cast<int64_t>(UINT32_MAX);
  const auto row_of = [&](int64_t t) {
    return tiles32 ? static_cast<int64_t>(static_cast<uint32_t>(t) /
                                          static_cast<uint32_t>(tiles_per_row))
                   : t / tiles_per_row;
  };
  int64_t row = row_of(tile);
  P next_pen = penalties[row * penalty_stride];
  for (; tile < tiles;) {
    const int64_t c = tile - row * tiles_per_row;
    const float pen = to_float(next_pen);
    const int64_t this_row = row;
    tile += gridDim.x;
    if (tile < tiles) {
      row = row_of(tile);
      next_pen = penalties[row * penalty_stride];
    }
    if (!SPECULATIVE && pen == 1.0f) {
      continue;
    }
    T* x = logits + this_row * logits_stride;
    const uint8_t* pm = prompt + this_row * prompt_stride;
    const uint8_t* om = output + this_row * output_stride;
    // Elements before x is 16-byte aligned.
    const int64_t mis = static_cast<int64_t>((reinterpret_cast<uintptr_t>(x) % 16) / sizeof(T));
    int64_t lead = mis == 0 ? 0 : VEC - mis;
    lead = lead < vocab ? lead : vocab;
    const bool vec_ok = reinterpret_cast<uintptr_t>(pm + lead) % VEC == 0 &&
                        reinterpret_cast<uintptr_t>(om + lead) % VEC == 0;
    if (!vec_ok) {
      if (pen == 1.0f) {
        continue;
      }
      // tile c covers the elements [c * kTileVecs * VEC, (c + 1) * kTileVecs * VEC)
      const int64_t lo = c * kTileVecs * VEC;
      const int64_t hi = lo + kTileVecs * VEC < vocab ? lo + kTileVecs * VEC : vocab;
      for (int64_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        penalize_one(x, pm, om, j, pen);
      }
      continue;
    }
    const int64_t nvec = (vocab - lead) / VEC;
    T* xv = x + lead;
    const uint8_t* pv = pm + lead;
    const uint8_t* ov = om + lead;
    const int64_t v0 = c * kTileVecs + threadIdx.x;
    MaskT mp[UNROLL];
    MaskT mo[UNROLL];
    uint4 val[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int64_t v = v0 + static_cast<int64_t>(u) * kPenaltyThreads;
      if (v < nvec) {
        mp[u] = *reinterpret_cast<const MaskT*>(pv + v * VEC);
        mo[u] = *reinterpret_cast<const MaskT*>(ov + v * VEC);
        val[u] = *reinterpret_cast<const uint4*>(xv + v * VEC);
      } else {
        mp[u] = 0;
        mo[u] = 0;
      }
    }
    if (SPECULATIVE && pen == 1.0f) {
      continue;
    }
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
    const RowPenalty rp = row_penalty(pen);  // once per tile
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const MaskT m = mp[u] | mo[u];
      if (m != 0) {
        const int64_t v = v0 + static_cast<int64_t>(u) * kPenaltyThreads;
        store_penalized<T, VEC>(xv + v * VEC, val[u], m, rp);
      }
    }
  }
}

// Rows that are a whole number of aligned vectors (16 bytes of logits, VEC bytes of each
// mask, at every row start; the launch checks): a grid of (chunks of kPenaltyRowThreads * VPT
// vectors, rows), VPT vectors a thread, no loop and no division. The penalty, the logits and
// both masks are loaded together, ahead of any other work; a row of penalty 1 is read but
// not written. Results as repetition_penalty_kernel's, which the launch keeps for the rows
// this kernel cannot take: there a thread works out its tile's row (a division) and the
// row's alignment before its loads (ncu, 1 x 128256 bf16: 292 instructions a warp against
// torch.compile's 60).
template <typename T, int VEC, int VPT, typename P>
__global__ void __launch_bounds__(kPenaltyRowThreads)
    repetition_penalty_rows_kernel(T* __restrict__ logits, int64_t logits_stride,
                                   const uint8_t* __restrict__ prompt, int64_t prompt_stride,
                                   const uint8_t* __restrict__ output, int64_t output_stride,
                                   const P* __restrict__ penalties, int64_t penalty_stride,
                                   int nvec) {
  stablekernels::cuda::pdl_enter();
  using MaskT = typename MaskWord<VEC>::type;
  const int v0 = static_cast<int>(blockIdx.x * (kPenaltyRowThreads * VPT) + threadIdx.x);
  if (v0 >= nvec) {
    return;
  }
  const int64_t row = blockIdx.y;
  const float pen = to_float(penalties[row * penalty_stride]);
  T* x = logits + row * logits_stride;
  const uint8_t* pm = prompt + row * prompt_stride;
  const uint8_t* om = output + row * output_stride;
  MaskT m[VPT];
  uint4 val[VPT];
#pragma unroll
  for (int u = 0; u < VPT; ++u) {
    const int v = v0 + u * kPenaltyRowThreads;
    m[u] = 0;
    val[u] = make_uint4(0, 0, 0, 0);
    if (u == 0 || v < nvec) {
      const int64_t at = static_cast<int64_t>(v) * VEC;
      const MaskT mp = *reinterpret_cast<const MaskT*>(pm + at);
      const MaskT mo = *reinterpret_cast<const MaskT*>(om + at);
      val[u] = *reinterpret_cast<const uint4*>(x + at);
      m[u] = mp | mo;
    }
  }
  const RowPenalty rp = row_penalty(pen);
#pragma unroll
  for (int u = 0; u < VPT; ++u) {
    uint32_t w[4] = {val[u].x, val[u].y, val[u].z, val[u].w};
    penalize_words<T>(w, m[u], rp);
    // No early exit for m == 0 or pen == 1 (a predicated store instead): ptxas sank the
    // logits' load behind that exit, a second trip to memory after the masks' and penalty's.
    const int64_t at = static_cast<int64_t>(v0 + u * kPenaltyRowThreads) * VEC;
    store_words_if<4>(m[u] != 0 && pen != 1.0f, reinterpret_cast<uint32_t*>(x + at), w);
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
  stablekernels::cuda::pdl_enter();
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
