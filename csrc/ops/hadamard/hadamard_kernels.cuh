// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA kernels of the hadamard family. Torch-free: raw pointers, RowIndexer, stream.
//
// The transform is one butterfly stage per bit of the element index, in any order (see
// hadamard_math.h), computed in float32 and rounded once on the store.
//
// hadamard_kernel (n < 1024): `tpr` <= 32 threads per row, EPT elements per thread. Thread
// t of a row loads element (k * tpr + t) * V + j into register k * V + j (V elements per
// vector access, 16 bytes where the row allows), so each of its K = EPT / V loads is one
// contiguous stretch of tpr vectors across the row's threads. The element bits then fall
// in two groups: the bits of j and k are a thread's own registers (butterflies in
// registers), the bits of t are lanes of a warp (butterflies over __shfl_xor_sync).
// Longer rows take hadamard_xpose_kernel below, 16-bit rows of n = 16384 and 32768 (8192
// past one row an SM) hadamard_wide_kernel where the device's shared memory allows, and
// 16-bit rows of n = 1024 to 4096 hadamard_mma_kernel (tensor cores) for the row counts
// hadamard_tuning.h gives.
//
// hadamard_generic_kernel: any pointers and strides, one block per row, the whole row in
// shared memory, one __syncthreads per stage. Used when vector access is not possible.

#include <cstdint>
#include <type_traits>

#include "ops/hadamard/hadamard_tuning.h"
#include "stablekernels/cuda_common.cuh"
#include "stablekernels/rows.h"

namespace stablekernels::hadamard::cuda {

using stablekernels::cuda::from_float;
using stablekernels::cuda::kVec16;
using stablekernels::cuda::load_vec;
using stablekernels::cuda::store_packed;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::unpack2;
using stablekernels::cuda::Vec;

// Elements per vector access of hadamard_kernel<T, EPT>.
template <typename T, int EPT>
constexpr int kVecElems = EPT < kVec16<T> ? EPT : kVec16<T>;

constexpr int ilog2(int v) {
  return v <= 1 ? 0 : 1 + ilog2(v / 2);
}

// Block size bound of hadamard_kernel: rows of at most 32 threads, several to a block.
constexpr int kMaxBlockThreads = 128;

// Thread t's part of a row x of `tpr` threads: element (k * tpr + t) * V + j (K accesses of
// V elements) into register k * V + j, as float32; zeros when x is null (a row past the end,
// which the block's loops still carry through every barrier).
template <typename T, int V, int K>
__device__ __forceinline__ void load_row_slice(float (&v)[K * V], const T* x, int tpr, int t) {
  if (x != nullptr) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const Vec<T, V> a = load_vec<T, V>(x + (k * tpr + t) * V);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        v[k * V + j] = to_float(a.v[j]);
      }
    }
  } else {
#pragma unroll
    for (int i = 0; i < K * V; ++i) {
      v[i] = 0.0f;
    }
  }
}

// What load_row_slice gives for the K 16-byte vectors of thread t's part of a row of 16-bit
// elements (8 a vector), as stage_row copies them.
template <typename T, int K>
__device__ __forceinline__ void unpack_row(float (&v)[K * 8], const uint4 (&w)[K]) {
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const uint32_t u[4] = {w[k].x, w[k].y, w[k].z, w[k].w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = unpack2<T>(u[i]);
      v[k * 8 + 2 * i] = f.x;
      v[k * 8 + 2 * i + 1] = f.y;
    }
  }
}

// In-register transform over the bits of the register index.
template <int COUNT>
__device__ __forceinline__ void register_stages(float (&v)[COUNT]) {
#pragma unroll
  for (int h = 1; h < COUNT; h *= 2) {
#pragma unroll
    for (int i = 0; i < COUNT; ++i) {
      if ((i & h) == 0) {
        const float lo = v[i];
        const float hi = v[i + h];
        v[i] = lo + hi;
        v[i + h] = lo - hi;
      }
    }
  }
}

// rows x [n] -> rows x [n], n = 2^log_n = EPT << log_tpr, tpr <= 32. Blocks of blockDim.x
// threads (a multiple of 32) take blockDim.x / tpr rows at a time. `out` may equal `in` (in
// place): every element of a row is loaded before any element of it is stored.
template <typename T, int EPT>
__global__ void __launch_bounds__(kMaxBlockThreads)
    hadamard_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows, int64_t rows,
                    int log_n, int log_tpr, float scale) {
  stablekernels::cuda::pdl_enter();
  constexpr int V = kVecElems<T, EPT>;
  constexpr int LOG_V = ilog2(V);
  constexpr int K = EPT / V;
  const int tpr = 1 << log_tpr;
  const int rows_per_block = blockDim.x >> log_tpr;
  const int t = threadIdx.x & (tpr - 1);
  const int row_in_block = threadIdx.x >> log_tpr;
  const int lane = threadIdx.x & 31;
  const int lane_stages = log_tpr < 5 ? log_tpr : 5;
  // The loop bounds are uniform over the block: every thread reaches every shuffle and
  // __syncthreads, also those whose row is past the end (they hold zeros, store nothing).
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * rows_per_block; first < rows;
       first += static_cast<int64_t>(gridDim.x) * rows_per_block) {
    const int64_t row = first + row_in_block;
    const bool valid = row < rows;
    float v[EPT];
    load_row_slice<T, V, K>(v, valid ? in + in_rows.offset(row) : nullptr, tpr, t);
    // Bits of j and k: the thread's own registers.
    register_stages<EPT>(v);
    // The low bits of t (up to five): lanes of one warp. A row of tpr <= 32 threads is an
    // aligned group of lanes, which a xor of offsets below tpr does not leave.
    for (int b = 0; b < lane_stages; ++b) {
      const int offset = 1 << b;
      const bool upper = (lane & offset) != 0;
#pragma unroll
      for (int i = 0; i < EPT; ++i) {
        const float other = __shfl_xor_sync(0xffffffffu, v[i], offset);
        v[i] = upper ? other - v[i] : v[i] + other;
      }
    }
    if (valid) {
      T* y = out + out_rows.offset(row);
#pragma unroll
      for (int k = 0; k < K; ++k) {
        Vec<T, V> o;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          o.v[j] = from_float<T>(v[k * V + j] * scale);
        }
        store_vec<T, V>(y + (k * tpr + t) * V, o);
      }
    }
  }
}

// Transform over the register bits from FIRST up to (not including) END, both powers of
// two: registers i and i + h with FIRST <= h < END.
template <int COUNT, int FIRST, int END>
__device__ __forceinline__ void register_stages_over(float (&v)[COUNT]) {
#pragma unroll
  for (int h = FIRST; h < END; h *= 2) {
#pragma unroll
    for (int i = 0; i < COUNT; ++i) {
      if ((i & h) == 0) {
        const float lo = v[i];
        const float hi = v[i + h];
        v[i] = lo + hi;
        v[i + h] = lo - hi;
      }
    }
  }
}

// Physical float index of entry (m, c) of a row viewed as a matrix of kXposeCols columns:
// row-major with the 16-byte chunks of row m permuted by the low three bits of m (bits
// 0, 1, 2 of m xored into bits 3, 4, 2 of c), so that the 16-byte accesses of 8
// consecutive rows to one chunk, the 4-byte accesses of a warp to one row (32 columns)
// and the accesses of DirectStore (below) hit distinct banks.
constexpr int kXposeCols = 32;
__device__ __forceinline__ int xpose_swizzle(int m) {
  return ((m & 4) | ((m & 1) << 3) | ((m & 2) << 3));
}
__device__ __forceinline__ int xpose_index(int m, int c) {
  return m * kXposeCols + (c ^ xpose_swizzle(m));
}

// Whether hadamard_xpose_kernel<T, LOG_N, STAGED> stores from the registers of its last step
// (hadamard_tuning.h).
template <int LOG_N>
constexpr bool kXposeDirect = (LOG_N > kXposeMinLogN) && (LOG_N <= kXposeDirectMaxLogN);

// Whether hadamard_xpose_kernel<T, LOG_N, true> exists (hadamard_tuning.h): 16-bit rows of
// n >= 2^kXposeStageMinLogN below the wide kernel's sizes, which need the same shared
// memory and take those rows wherever it fits.
template <typename T, int LOG_N>
constexpr bool kXposeStaged =
    (sizeof(T) == 2) && (LOG_N >= kXposeStageMinLogN) && (LOG_N < kWideAllRowsLogN);

// 16 bytes from global to shared memory without registers (cp.async, sm_80 and newer),
// cached in L2 only; and the wait for all of this thread's copies.
__device__ __forceinline__ void copy_async16(void* smem, const void* gmem) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(gmem) : "memory");
}
__device__ __forceinline__ void copy_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
__device__ __forceinline__ void copy_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

// Thread t's part of a row x of 16-bit elements (its 16-byte vectors k * tpr + t, k < K, as
// load_row_slice reads them) copied to `stage` (K * tpr 16-byte vectors) by cp.async;
// nothing when x is null.
// `place` maps a vector's index in the row to its place in `stage` (the same index unless a
// kernel swizzles its staged rows).
struct SamePlace {
  __device__ __forceinline__ int operator()(int q) const { return q; }
};
template <int K, typename Place = SamePlace>
__device__ __forceinline__ void stage_row(uint4* stage, const void* x, int tpr, int t,
                                          Place place = {}) {
  if (x != nullptr) {
    const uint4* p = static_cast<const uint4*>(x);
#pragma unroll
    for (int k = 0; k < K; ++k) {
      copy_async16(stage + place(k * tpr + t), p + k * tpr + t);
    }
  }
  copy_async_commit();
}

// The barrier between the steps of a row of TPR threads: the warp where a row is one warp,
// else the block (whose rows all reach it: the loops' bounds are uniform over the block).
template <int TPR>
__device__ __forceinline__ void sync_row() {
  if constexpr (TPR == 32) {
    __syncwarp();
  } else {
    __syncthreads();
  }
}

// Thread t's part of the current row (K 16-byte vectors of 16-bit elements, as
// load_row_slice gives it) from `stage`, where this thread's own copies put it (so no
// barrier: it waits for its copies only), then the copies of its part of the row that
// next_row() points to (null: none) issued into the same places, once the reads are
// consumed (unpacked). next_row is asked there, after the reads.
template <typename T, int K, typename NextRow>
__device__ __forceinline__ void take_staged_row(float (&v)[K * 8], uint4* stage, int tpr, int t,
                                                NextRow next_row) {
  copy_async_wait_all();
  uint4 w[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    w[k] = stage[k * tpr + t];
  }
  unpack_row<T, K>(v, w);
  const T* next = next_row();
  stage_row<K>(stage, next, tpr, t);
}

// The last step of hadamard_xpose_kernel where kXposeDirect holds: the HB = LOG_N - 10 high
// bits of m (the row matrix X's row index, element bits LOG_V + 5 and up) are transformed
// in registers, and the results are stored from there, with no further trip through
// shared memory. Register r = (f, h, j) of thread u of a row holds element
//   j | uLo << SJ | h << (LOG_V + 5) | uHi << (LOG_V + 5 + HB) | f << (LOG_N - FILL),
// uLo the low LOG_V + 5 - SJ bits of u and uHi the rest: the SJ low bits of r are the
// lowest element bits (a store vector of 2^SJ consecutive elements), the next HB are the
// bits transformed here, the FILL highest the top element bits, and the lanes of a warp
// (the low bits of u) are the element bits just above a store vector, so that a warp
// stores 32 consecutive vectors. The xor swizzle of xpose_index keeps the warp's reads
// of shared memory on distinct banks (for the vectors of 16 and 8 bytes, in each quarter
// or half warp).
template <int LOG_V, int LOG_N>
struct DirectStore {
  static constexpr int kLogTpr = LOG_N - 5;
  static constexpr int kHB = kLogTpr - 5;
  static constexpr int kSJ = LOG_V < 5 - kHB ? LOG_V : 5 - kHB;
  static constexpr int kFill = 5 - kSJ - kHB;
  static constexpr int kULoBits = LOG_V + 5 - kSJ;
  static constexpr int kUnit = kSJ >= 2 ? 4 : (1 << kSJ);  // floats per shared-memory read
  static_assert(kHB >= 1 && kHB <= 5 && kFill >= 0 && kFill <= 5 - LOG_V, "n from 2048 to 32768");

  // Thread u's shared-memory row (m's low 5 bits times 32), its column bits xored with the
  // swizzle, and its first element.
  int base, col, elem;
  __device__ __forceinline__ explicit DirectStore(int u) {
    const int ulo = u & ((1 << kULoBits) - 1);
    const int uhi = u >> kULoBits;
    const int ml = ulo >> (LOG_V - kSJ);
    const int cu = ((ulo & ((1 << (LOG_V - kSJ)) - 1)) << kSJ) | (uhi << LOG_V);
    base = ml * kXposeCols;
    col = cu ^ xpose_swizzle(ml);
    elem = (ulo << kSJ) | (uhi << (LOG_V + 5 + kHB));
  }
  // Register r's float in shared memory (r's part of the column is disjoint from u's).
  __device__ __forceinline__ int index(int r) const {
    const int j = r & ((1 << kSJ) - 1);
    const int h = (r >> kSJ) & ((1 << kHB) - 1);
    const int f = r >> (kSJ + kHB);
    return base + h * 32 * kXposeCols + (col ^ (j | (f << (5 - kFill))));
  }
  // Register r's element of the row (r's low SJ bits clear).
  __device__ __forceinline__ int element(int r) const {
    const int h = (r >> kSJ) & ((1 << kHB) - 1);
    const int f = r >> (kSJ + kHB);
    return elem | (h << (LOG_V + 5)) | (f << (LOG_N - kFill));
  }
};

// W = 1, 2 or 4 consecutive floats of shared memory (W-aligned) read as one access.
template <int W>
__device__ __forceinline__ void read_floats(float* dst, const float* src) {
  if constexpr (W == 4) {
    const float4 f = *reinterpret_cast<const float4*>(src);
    dst[0] = f.x;
    dst[1] = f.y;
    dst[2] = f.z;
    dst[3] = f.w;
  } else if constexpr (W == 2) {
    const float2 f = *reinterpret_cast<const float2*>(src);
    dst[0] = f.x;
    dst[1] = f.y;
  } else {
    dst[0] = *src;
  }
}

// rows x [n] -> rows x [n] for n = 2^LOG_N >= 1024, rows 16-byte aligned. A row is a
// matrix X[m][c] of TPR = n / 32 rows m and 32 columns c = k * V + j, element
// k * TPR * V + m * V + j (V elements per 16-byte vector, k < 32 / V), so thread m of
// the row loads (and finally stores) row m of X with 32 / V 16-byte accesses, each
// contiguous across the row's threads. The stages run in registers only, the row
// crossing shared memory (float32, swizzled, no bank conflicts) between them:
//   1. the 5 bits of c (thread m holds row m);
//   2. the low 5 bits of m: thread (mh, c) reads X[32 * mh + ml][c], ml < 32;
//   3. when TPR > 32, the H = TPR / 32 values of mh: thread (w, c) reads
//      X[32 * mh + G * w + g][c], g < G = 32 / H, mh < H;
// and each thread writes back what it read (the same addresses, so no barrier is
// needed before), then reads row m of X again to scale, round and store it. Where
// kXposeDirect holds, step 3 reads its values in the order of DirectStore instead and
// stores them from its registers, which leaves out a write and a read of the whole row
// in shared memory (a third of the shared-memory traffic) and a barrier. Every
// element of a row is loaded before any is stored: `out` may equal `in`. Blocks hold
// RPB rows (RPB * TPR threads, RPB * n floats of dynamic shared memory).
//
// STAGED (16-bit rows, kXposeStaged): the grid is the resident blocks, which loop over the
// rows, and each thread copies its part of the block's next rows by cp.async into shared
// memory after the float32 rows (RPB * n * 2 more bytes) before the exchanges of the
// current ones, reading back only what it copied itself: the loads are in flight during
// the exchanges and stores with no registers held (64 a thread: 1024 threads per SM, the
// launch bounds). Each row is loaded and stored by one block
// only, and rows are distinct memory (in place too), so loading row r + gridDim.x * RPB
// before storing row r keeps `out` == `in` valid.
template <typename T, int LOG_N, bool STAGED>
__global__ void __launch_bounds__((1 << (LOG_N - 5)) * kXposeRowsPerBlock<LOG_N>,
                                  STAGED ? 1024 / ((1 << (LOG_N - 5)) * kXposeRowsPerBlock<LOG_N>)
                                         : 0)
    hadamard_xpose_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                          int64_t rows, float scale) {
  stablekernels::cuda::pdl_enter();
  constexpr int N = 1 << LOG_N;
  constexpr int V = kVec16<T>;
  constexpr int K = kXposeCols / V;
  constexpr int TPR = N / kXposeCols;
  constexpr int RPB = kXposeRowsPerBlock<LOG_N>;
  constexpr int H = TPR / 32;  // 0 when TPR == 32: no third step
  constexpr int G = H > 0 ? 32 / H : 32;
  constexpr bool DIRECT = kXposeDirect<LOG_N>;
  static_assert(!STAGED || V == 8, "staged rows are 16-bit");
  static_assert(TPR >= 32 && TPR <= 1024, "n from 1024 to 32768");
  extern __shared__ float4 hadamard_smem[];
  const int t = threadIdx.x % TPR;
  const int row_in_block = threadIdx.x / TPR;
  float* s = reinterpret_cast<float*>(hadamard_smem) + row_in_block * N;
  const int64_t step = static_cast<int64_t>(gridDim.x) * RPB;
  // STAGED: the block's next rows, as they are in memory, after the float32 rows.
  uint4* stage = reinterpret_cast<uint4*>(reinterpret_cast<float*>(hadamard_smem) + RPB * N) +
                 row_in_block * (N / 8);
  if constexpr (STAGED) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * RPB + row_in_block;
    stage_row<K>(stage, row < rows ? in + in_rows.offset(row) : nullptr, TPR, t);
  }
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * RPB; first < rows; first += step) {
    const int64_t row = first + row_in_block;
    const bool valid = row < rows;
    float v[kXposeCols];
    if constexpr (STAGED) {
      take_staged_row<T, K>(v, stage, TPR, t, [&] {
        const int64_t next = row + step;
        return next < rows ? in + in_rows.offset(next) : nullptr;
      });
    } else {
      load_row_slice<T, V, K>(v, valid ? in + in_rows.offset(row) : nullptr, TPR, t);
    }
    // 1. The bits of c.
    register_stages<kXposeCols>(v);
    if (first != static_cast<int64_t>(blockIdx.x) * RPB) {
      sync_row<TPR>();  // the previous rows' reads of shared memory are done
    }
#pragma unroll
    for (int q = 0; q < kXposeCols / 4; ++q) {
      *reinterpret_cast<float4*>(s + xpose_index(t, 4 * q)) =
          make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
    }
    sync_row<TPR>();
    // 2. The low 5 bits of m.
    {
      const int c = t % 32;
      float* base = s + (t / 32) * 32 * kXposeCols;
#pragma unroll
      for (int ml = 0; ml < 32; ++ml) {
        v[ml] = base[xpose_index(ml, c)];
      }
      register_stages<kXposeCols>(v);
#pragma unroll
      for (int ml = 0; ml < 32; ++ml) {
        base[xpose_index(ml, c)] = v[ml];
      }
    }
    if constexpr (DIRECT) {
      // 3. The bits of m above the low 5, in the layout of the stores (DirectStore).
      sync_row<TPR>();
      using D = DirectStore<ilog2(V), LOG_N>;
      const D d(t);
#pragma unroll
      for (int r = 0; r < kXposeCols; r += D::kUnit) {
        read_floats<D::kUnit>(v + r, s + d.index(r));
      }
      register_stages_over<kXposeCols, 1 << D::kSJ, 1 << (D::kSJ + D::kHB)>(v);
      if (valid) {
        T* y = out + out_rows.offset(row);
#pragma unroll
        for (int r = 0; r < kXposeCols; r += 1 << D::kSJ) {
          Vec<T, 1 << D::kSJ> o;
#pragma unroll
          for (int i = 0; i < (1 << D::kSJ); ++i) {
            o.v[i] = from_float<T>(v[r + i] * scale);
          }
          store_packed<T, 1 << D::kSJ>(y + d.element(r), o);
        }
      }
    } else {
      // 3. The bits of m above the low 5.
      if constexpr (H > 1) {
        sync_row<TPR>();
        const int c = t % 32;
        const int w = t / 32;
#pragma unroll
        for (int g = 0; g < G; ++g) {
#pragma unroll
          for (int mh = 0; mh < H; ++mh) {
            v[g * H + mh] = s[xpose_index(32 * mh + G * w + g, c)];
          }
        }
        register_stages_over<kXposeCols, 1, H>(v);
#pragma unroll
        for (int g = 0; g < G; ++g) {
#pragma unroll
          for (int mh = 0; mh < H; ++mh) {
            s[xpose_index(32 * mh + G * w + g, c)] = v[g * H + mh];
          }
        }
      }
      sync_row<TPR>();
      if (valid) {
        T* y = out + out_rows.offset(row);
#pragma unroll
        for (int k = 0; k < K; ++k) {
          Vec<T, V> o;
#pragma unroll
          for (int j = 0; j < V; j += 4) {
            const float4 f = *reinterpret_cast<const float4*>(s + xpose_index(t, k * V + j));
            const float fv[4] = {f.x, f.y, f.z, f.w};
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              o.v[j + i] = from_float<T>(fv[i] * scale);
            }
          }
          store_vec<T, V>(y + (k * TPR + t) * V, o);
        }
      }
    }
  }
}

// hadamard_mma_kernel<T, LOG_N>: 16-bit rows of n = 2^LOG_N, LOG_N = 10 to 12, TPR = n / 32
// threads a row (a block of 128 threads holds MmaShape::kRows rows), on a grid of resident
// blocks that loop over the rows. Each row is staged in shared memory by cp.async as it is
// in memory (16-byte chunks, swizzled), and its element bits are transformed in two steps
// with one exchange through shared memory (float32) in between:
//   1. tensor cores: element bits 0-3 as the k dimension of mma.m16n8k16, a warp's part
//      of the row as four tiles of 16 groups of 16 elements times H_16 (two mma a tile,
//      columns 0-7 and 8-15; bf16 or fp16 operands from ldmatrix, the products exact and
//      summed in float32), then the bits the thread holds in its registers beside them
//      (4, 5 and 6) as butterflies. Register r = (j, m3, h, T) (bits 0, 1, 2, 3-4) of
//      lane (g, c) = (lane / 4, lane % 4) of the row's warp w holds element
//        j | c << 1 | h << 3 | m3 << 4 | T << 5 | g << 7 | w << 10;
//   2. thread t holds elements t + (r << (LOG_N - 5)): element bits 7 and up are register
//      bits, transformed in registers; scaled and rounded, each pair of neighboring lanes
//      swaps half of a register pair to store 4-byte words (a warp: two 64-byte runs).
// Against hadamard_xpose_kernel: 8 mma replace 4 of the 12 butterfly stages at n = 4096
// (128 of 384 additions a thread) and one of its two exchanges; the row's path from its
// load to its stores is shorter, which counts where blocks handle few rows each
// (hadamard_tuning.h). Every element of a row is staged before any is stored, and the
// staged rows are other rows: `out` may equal `in`.
template <int LOG_N>
struct MmaShape {
  static_assert(LOG_N >= 10 && LOG_N <= 12, "n = 1024 to 4096");
  static constexpr int kTpr = (1 << LOG_N) / 32;
  static constexpr int kRows = kTpr >= 128 ? 1 : 128 / kTpr;
  static constexpr int kThreads = kTpr * kRows;
  // Blocks per SM of the launch bounds: 1024 threads of 64 registers (ptxas keeps three
  // loop-invariant values in local memory: three L1 loads a row). 9 blocks of 56 registers
  // spilled 20-32 bytes and ran 4-15% slower.
  static constexpr int kMinBlocks = 1024 / kThreads;
  // Dynamic shared memory: the float32 rows and the staged rows.
  static constexpr int64_t kSmem = int64_t{kRows} * (int64_t{1} << LOG_N) * (4 + 2);
};
// Whether hadamard_mma_kernel<T, LOG_N> is made (sm_80 and newer have the instructions).
template <typename T, int LOG_N>
constexpr bool kMma = (sizeof(T) == 2) && (LOG_N >= kMmaMinLogN) && (LOG_N <= kMmaMaxLogN);

// The staged row's 16-byte chunk q (elements 8q to 8q + 7) is kept at q ^ ((q >> 4) & 7)
// (stage_row's place): the eight rows of an ldmatrix matrix (chunks 16 apart) land on
// distinct banks.
struct MmaChunk {
  __device__ __forceinline__ int operator()(int q) const { return q ^ ((q >> 4) & 7); }
};
// The float32 row's element e is kept at e ^ (((e >> 7) & 3) << 3): step 1's 8-byte writes
// (a half warp: element bits 1-2 and 7-8) and step 2's 4-byte reads (a warp: bits 0-4) hit
// distinct banks.
__device__ __forceinline__ int mma_float(int e) {
  return e ^ (((e >> 7) & 3) << 3);
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&a)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
               : "r"(addr)
               : "memory");
}

// d = a * b (m16n8k16, float32 sums of 16-bit products).
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4],
                                          const uint32_t (&b)[2]) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%10, %10, %10, %10};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(0.0f));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%10, %10, %10, %10};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(0.0f));
  }
}

// Two entries of H_16 (+-1 in T) as the 32-bit word of a B fragment: rows k and k + 1 of
// column n, the lower row in the low half.
template <typename T>
__device__ __forceinline__ uint32_t h16_pair(int k, int n) {
  constexpr uint32_t kOne = std::is_same_v<T, __nv_bfloat16> ? 0x3F80u : 0x3C00u;
  const uint32_t lo = kOne | ((__popc(k & n) & 1u) << 15);
  const uint32_t hi = kOne | ((__popc((k + 1) & n) & 1u) << 15);
  return lo | (hi << 16);
}

template <typename T, int LOG_N>
__global__ void __launch_bounds__(MmaShape<LOG_N>::kThreads, MmaShape<LOG_N>::kMinBlocks)
    hadamard_mma_kernel(T* out, StridedRows out_rows, const T* in, StridedRows in_rows,
                        int64_t rows, float scale) {
  stablekernels::cuda::pdl_enter();
  using S = MmaShape<LOG_N>;
  constexpr int N = 1 << LOG_N;
  constexpr int TPR = S::kTpr;
  constexpr int RPB = S::kRows;
  constexpr int K = N / 8 / TPR;  // 16-byte chunks a thread stages: 4
  static_assert(sizeof(T) == 2 && K == 4, "16-bit rows");
  extern __shared__ float4 hadamard_smem[];
  const int t = threadIdx.x % TPR;
  const int row_in_block = threadIdx.x / TPR;
  float* const xs = reinterpret_cast<float*>(hadamard_smem) + row_in_block * N;
  uint4* const stage = reinterpret_cast<uint4*>(reinterpret_cast<float*>(hadamard_smem) + RPB * N) +
                       row_in_block * (N / 8);
  const auto stage_next = [&](int64_t row) {
    stage_row<K>(stage, row < rows ? in + in_rows.offset(row) : nullptr, TPR, t, MmaChunk{});
  };
  const int lane = t % 32;
  const int w = t / 32;
  const int g = lane >> 2;
  const int c = lane & 3;
  // B fragments of H_16's columns n = g and g + 8 (rows 2c, 2c + 1 and 2c + 8, 2c + 9).
  uint32_t b[2][2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    b[h][0] = h16_pair<T>(2 * c, g + 8 * h);
    b[h][1] = h16_pair<T>(2 * c + 8, g + 8 * h);
  }
  // ldmatrix rows: lane (i, r) = (lane / 8, lane % 8) gives matrix i's row r: group
  // g' = r | (i & 1) << 3 of tile T (m3 = i & 1, element bit 4), its k half i >> 1
  // (element bit 3), i.e. chunk (i >> 1) | (i & 1) << 1 | T << 2 | r << 4 | w << 7.
  const int li = lane >> 3;
  const int lr = lane & 7;
  const uint32_t stage_addr = static_cast<uint32_t>(__cvta_generic_to_shared(stage));
  const int q0 = (li >> 1) | ((li & 1) << 1) | (lr << 4) | (w << 7);
  // Step 1's float32 index of register (j, m3, h, T): (base ^ (h << 3 | m3 << 4)) + (T << 5).
  const int base1 = mma_float((c << 1) | (g << 7) | (w << 10));
  const int64_t step = static_cast<int64_t>(gridDim.x) * RPB;
  stage_next(static_cast<int64_t>(blockIdx.x) * RPB + row_in_block);
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * RPB; first < rows; first += step) {
    const int64_t row = first + row_in_block;
    copy_async_wait_all();
    sync_row<TPR>();  // the staged rows are in; the previous rows' reads of xs are done
    float v[32];
#pragma unroll
    for (int tile = 0; tile < 4; ++tile) {
      uint32_t a[4];
      ldmatrix_x4(a, stage_addr + 16u * static_cast<uint32_t>(MmaChunk{}(q0 | (tile << 2))));
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float d[4];
        mma_16816<T>(d, a, b[h]);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          v[tile * 8 + h * 4 + i] = d[i];  // i = m3 * 2 + j
        }
      }
    }
    // Register bits 1 (m3, element bit 4) and 3, 4 (T, element bits 5, 6).
    register_stages_over<32, 2, 4>(v);
    register_stages_over<32, 8, 32>(v);
#pragma unroll
    for (int r = 0; r < 32; r += 2) {
      const int hm = ((r >> 2) & 1) << 3 | ((r >> 1) & 1) << 4;  // h << 3 | m3 << 4
      *reinterpret_cast<float2*>(xs + ((base1 ^ hm) + ((r >> 3) << 5))) =
          make_float2(v[r], v[r + 1]);
    }
    sync_row<TPR>();  // xs holds the row; every ldmatrix read of the stage is done
    stage_next(row + step);
    // 2. Element bits 7 and up: thread t's registers. mma_float(t + (r << (LOG_N - 5))) is
    // t ^ (((r >> (12 - LOG_N)) & 3) << 3) plus r << (LOG_N - 5) (t < 128): four xored
    // bases with immediate offsets.
#pragma unroll
    for (int r = 0; r < 32; ++r) {
      v[r] = xs[(t ^ (((r >> (12 - LOG_N)) & 3) << 3)) + (r << (LOG_N - 5))];
    }
    register_stages_over<32, 1 << (12 - LOG_N), 32>(v);
    if (row < rows) {
      // Lanes t and t ^ 1 hold neighboring elements: each pair of registers (r, r + 1) gives
      // two 4-byte words, the even lane storing the pair of register r and the odd lane
      // that of register r + 1 (one shuffle and a byte permutation a word).
      const bool odd = (t & 1) != 0;
      const uint32_t sel = odd ? 0x3276u : 0x5410u;
      T* const y = out + out_rows.offset(row) + (t & ~1) + (odd ? (1 << (LOG_N - 5)) : 0);
#pragma unroll
      for (int r = 0; r < 32; r += 2) {
        const uint32_t own = stablekernels::cuda::pack2<T>(v[r] * scale, v[r + 1] * scale);
        const uint32_t other = __shfl_xor_sync(0xffffffffu, own, 1);
        *reinterpret_cast<uint32_t*>(y + (r << (LOG_N - 5))) = __byte_perm(own, other, sel);
      }
    }
  }
}

// hadamard_wide_kernel<T, LOG_N>: 16-bit rows of n = 2^LOG_N (LOG_N = 14 or 15), one row a
// block of n / 64 threads (WideShape: 256 or 512) of kWideRegs = 64 float32 registers, the
// element bits transformed in registers over three steps, the row crossing shared memory
// (float32, wide_smem below) twice in between:
//   A. thread t loads its 16-byte vectors k * threads + t (k < 8; elements
//      (k * threads + t) * 8 + j, register r = k * 8 + j, as take_staged_row gives them):
//      j and k are element bits 0-2 and the top three, transformed here; it writes them as
//      16 float4 (4 consecutive j);
//   B. thread u = (ua, ub) (its 3 low bits, its others) reads register r = element
//      ua | r << 3 | ub << 9 (bits 3-8, scalar accesses), transforms them and writes them
//      back to the same places (no barrier before); the lanes of a warp are bits 0, 1, 2,
//      9 and 10;
//   C. thread u = (lane l, warp w) reads register r = (h, j) = element
//      j | l << 3 | w0 << 8 | h << 9 | (w >> 1) << 12 (w0 the low bit of w) as float4:
//      8 vectors of 8 consecutive elements; of h (bits 9-11) those not done in A are
//      transformed here (9-11 at n = 2^15, 9-10 at 2^14, where bit 11, done in A, is
//      carried: 64 registers hold 8 elements of a store vector and 3 more bits, of which
//      only 2 are left; 9 at 2^13, where bits 10 and 11 are carried and bit 12 is the high
//      bit of w); it scales, rounds and stores each vector from its registers
//      (16 bytes; a warp's 32 are 512 contiguous bytes).
// The wide_*_element functions below give the element of register r of thread u in each
// step, as two parts on disjoint bits (element(u, 0) | element(0, r)); only step A's
// depends on LOG_N.
template <int LOG_N>
struct WideShape {
  static_assert(LOG_N >= kWideMinLogN && LOG_N <= kWideMaxLogN, "n = 2^13 to 2^15");
  static_assert(kWideRegs == 64, "6 register bits: 8 vectors of 8 elements");
  static constexpr int kThreads = (1 << LOG_N) / kWideRegs;
  // Blocks per SM of the launch bounds (kWideThreadsPerSm threads of 128 registers).
  static constexpr int kMinBlocks = kWideThreadsPerSm / kThreads;
  // Step C transforms register bits 3 up to (not including) ilog2(kCEnd): element bits 9
  // to LOG_N - 4.
  static constexpr int kCEnd = 8 << (LOG_N - 12);
  // Dynamic shared memory: the float32 row and the staged next row.
  static constexpr int64_t kSmem = (int64_t{1} << LOG_N) * (4 + 2);
};
// Whether hadamard_wide_kernel<T, LOG_N> is made for rows of 2^LOG_N elements of T.
template <typename T, int LOG_N>
constexpr bool kWide = (sizeof(T) == 2) && (LOG_N >= kWideMinLogN) && (LOG_N <= kWideMaxLogN);
template <int LOG_N>
constexpr int wide_load_element(int u, int r) {
  return ((r >> 3) << (LOG_N - 3)) | (u << 3) | (r & 7);
}
constexpr int wide_exchange_element(int u, int r) {
  return (u & 7) | (r << 3) | ((u >> 3) << 9);
}
constexpr int wide_store_element(int u, int r) {
  const int w = u >> 5;
  return (r & 7) | ((u & 31) << 3) | ((w & 1) << 8) | ((r >> 3) << 9) | ((w >> 1) << 12);
}

// Float of shared memory of element e: e with element bit 5 xored into bit 2 and bits 9, 10
// into bits 3, 4 (bank bits are 0-4; bits 0-1 are kept: float4 stay 4 consecutive
// elements). The 8 float4 of a quarter warp in steps A and C differ in element bits 3-5
// only, which land on bank bits 3, 4 and 2 (each xored with bits fixed in the access): 8
// distinct groups of 4 banks. The scalar accesses of a warp in step B differ in element
// bits 0, 1, 2, 9, 10 only, which land on bank bits 0, 1 and 2, 3, 4 (these xored with the
// fixed bits 5, 3, 4): 32 distinct banks.
constexpr int wide_smem(int e) {
  return e ^ (((e >> 5) & 1) << 2) ^ (((e >> 9) & 3) << 3);
}
// wide_smem(element(u, 0) | element(0, r)) from `base` = wide_smem(element(u, 0)) and the
// register's part e = element(0, r) (a compile-time constant): the swizzle is a xor of
// bits, so the result is base ^ wide_smem(e), which is written as a xor of the low 5 bits
// (wide_smem touches bits 2-4 only) and an add of the others (clear in `base` in every step),
// so that a thread keeps a few xored bases and addresses its registers with immediate
// offsets from them.
__device__ __forceinline__ int wide_index(int base, int e) {
  const int p = wide_smem(e);
  return (base ^ (p & 31)) + (p & ~31);
}

// rows x [n] -> rows x [n] for 16-bit rows of n = 2^LOG_N, 16-byte aligned, in the three
// steps above. The grid is the resident blocks (WideShape::kSmem of shared memory each),
// which loop over the rows and stage the next row as hadamard_xpose_kernel<T, LOG_N, true>
// does (take_staged_row: each thread reads back only its own copies). Every element of a
// row is loaded before any is stored, and the staged row is another row: `out` may equal
// `in`.
template <typename T, int LOG_N>
__global__ void __launch_bounds__(WideShape<LOG_N>::kThreads, WideShape<LOG_N>::kMinBlocks)
    hadamard_wide_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows, int64_t rows,
                         float scale) {
  stablekernels::cuda::pdl_enter();
  using S = WideShape<LOG_N>;
  constexpr int N = 1 << LOG_N;
  constexpr int K = kWideRegs / 8;  // 16-byte vectors a thread loads and stores
  static_assert(sizeof(T) == 2, "16-bit rows");
  extern __shared__ float4 hadamard_smem[];
  float* s = reinterpret_cast<float*>(hadamard_smem);
  uint4* stage = reinterpret_cast<uint4*>(s + N);  // the next row, as it is in memory
  const int u = threadIdx.x;
  const int a_base = wide_smem(wide_load_element<LOG_N>(u, 0));
  const int b_base = wide_smem(wide_exchange_element(u, 0));
  const int c_base = wide_smem(wide_store_element(u, 0));
  const int c_elem = wide_store_element(u, 0);
  stage_row<K>(stage, blockIdx.x < rows ? in + in_rows.offset(blockIdx.x) : nullptr, S::kThreads,
               u);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    float v[kWideRegs];
    take_staged_row<T, K>(v, stage, S::kThreads, u, [&] {
      const int64_t next = row + gridDim.x;
      return next < rows ? in + in_rows.offset(next) : nullptr;
    });
    // A. Element bits 0-2 and the top three.
    register_stages<kWideRegs>(v);
    if (row != blockIdx.x) {
      __syncthreads();  // the previous row's reads of shared memory (step C) are done
    }
#pragma unroll
    for (int r = 0; r < kWideRegs; r += 4) {
      *reinterpret_cast<float4*>(s + wide_index(a_base, wide_load_element<LOG_N>(0, r))) =
          make_float4(v[r], v[r + 1], v[r + 2], v[r + 3]);
    }
    __syncthreads();
    // B. Element bits 3-8.
#pragma unroll
    for (int r = 0; r < kWideRegs; ++r) {
      v[r] = s[wide_index(b_base, wide_exchange_element(0, r))];
    }
    register_stages<kWideRegs>(v);
#pragma unroll
    for (int r = 0; r < kWideRegs; ++r) {
      s[wide_index(b_base, wide_exchange_element(0, r))] = v[r];
    }
    __syncthreads();
    // C. Element bits 9 to LOG_N - 4 (register bits 3 up), then the stores.
#pragma unroll
    for (int r = 0; r < kWideRegs; r += 4) {
      read_floats<4>(v + r, s + wide_index(c_base, wide_store_element(0, r)));
    }
    register_stages_over<kWideRegs, 8, S::kCEnd>(v);
    T* y = out + out_rows.offset(row) + c_elem;
#pragma unroll
    for (int r = 0; r < kWideRegs; r += 8) {
      Vec<T, 8> o;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        o.v[i] = from_float<T>(v[r + i] * scale);
      }
      store_packed<T, 8>(y + wide_store_element(0, r), o);
    }
  }
}

// rows x [n] -> rows x [n] with any row pointers; one block per row, n floats of dynamic
// shared memory. `out` may equal `in`.
template <typename T>
__global__ void __launch_bounds__(1024)
    hadamard_generic_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                            int64_t rows, int log_n, float scale) {
  stablekernels::cuda::pdl_enter();
  extern __shared__ float4 hadamard_smem[];
  float* s = reinterpret_cast<float*>(hadamard_smem);
  const int n = 1 << log_n;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + in_rows.offset(row);
    T* y = out + out_rows.offset(row);
    __syncthreads();  // the previous row's reads of shared memory are done
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      s[j] = to_float(x[j]);
    }
    __syncthreads();
    for (int h = 1; h < n; h *= 2) {
      for (int p = threadIdx.x; p < n / 2; p += blockDim.x) {
        const int i = ((p & ~(h - 1)) << 1) | (p & (h - 1));
        const float lo = s[i];
        const float hi = s[i + h];
        s[i] = lo + hi;
        s[i + h] = lo - hi;
      }
      __syncthreads();
    }
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      y[j] = from_float<T>(s[j] * scale);
    }
  }
}

}  // namespace stablekernels::hadamard::cuda
