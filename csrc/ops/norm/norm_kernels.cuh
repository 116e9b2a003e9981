// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA kernels of the norm family. Torch-free: raw pointers, RowIndexer, stream.
//
// One block per row. The register kernels keep the whole row in registers
// (ITEMS vectors of VEC elements per thread), so each element is read from
// global memory once and written once: the minimal traffic, which is what a
// memory-bound op needs to reach the bandwidth ceiling. rms_norm's rows of 8192 to
// 32768 bf16 (4096 to 16384 float32) take the two-pass kernel instead, which reads the row again
// from L1 and steers L2's evictions (rms_norm_two_pass_kernel). Rows too long for the register
// kernels use the generic kernel, which reads the row twice (the second time mostly
// from L2). Accumulation is in float32.

#include <cstdint>

#include "stablekernels/cuda_common.cuh"
#include "stablekernels/rows.h"

namespace stablekernels::norm::cuda {

// The register kernels run blocks of at most kRegisterKernelThreads threads with
// several blocks resident per SM: a memory-bound op needs several rows in flight
// per SM to cover HBM latency.
constexpr int kRegisterKernelThreads = 256;

// Resident blocks per SM by the row data a thread holds: <= 32 bytes -> 8 blocks
// (<= 32 registers), <= 64 bytes -> 4 (<= 64 registers), else 3 (<= 85 registers,
// which avoids spilling the larger slices). Short rows need many rows in flight.
template <typename T, int VEC, int ITEMS, int SLICES>
constexpr int register_kernel_min_blocks() {
  constexpr int bytes = SLICES * ITEMS * VEC * static_cast<int>(sizeof(T));
  return bytes <= 32 ? 8 : (bytes <= 64 ? 4 : 3);
}

using stablekernels::cuda::block_sum;
using stablekernels::cuda::from_float;
using stablekernels::cuda::load_vec;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::Vec;

// Loads a thread's slice of a row: item i is vector threadIdx.x + i * blockDim.x. Items
// past the row end load the row's first vector instead (always valid memory, a broadcast
// L1 hit) and are never used: unconditional loads leave no partly assigned arrays, which
// nvcc otherwise keeps on the stack for 16-bit types (STL.S16 / LDL in the SASS).
// READ_ONLY (memory no thread of the kernel writes): through load_packed, whose loads are
// issued where they are written (asm volatile, ld.global.nc). fused_add_rms_norm's decode
// kernel reads its weight so: read only after the reduction, the weight's loads had been
// moved by ptxas behind the first item's add, i.e. behind the wait for the input and the
// residual (2 items; H200, bf16, under CUDA graphs 1 x 8192 2.22 -> 2.12 us, 32 x 8192
// 2.42 -> 2.33).
template <typename T, int VEC, int ITEMS, bool READ_ONLY = false>
__device__ __forceinline__ void load_slice(Vec<T, VEC> (&v)[ITEMS], const T* p, int nvec) {
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int j = threadIdx.x + i * blockDim.x;
    const T* q = p + static_cast<int64_t>(j < nvec ? j : 0) * VEC;
    if constexpr (READ_ONLY) {
      v[i] = stablekernels::cuda::unpack<T, VEC>(stablekernels::cuda::load_packed<T, VEC>(q));
    } else {
      v[i] = load_vec<T, VEC>(q);
    }
  }
}

// fused_add_rms_norm's first step on a thread's slice: z = x + z rounded to T (the new
// residual), stored to `z_row`; returns the sum of squares of the rounded values.
// PREDICATED (every item loaded, as by load_slice): no branch, the store predicated.
// Behind a branch on the item's bound ptxas sank the load of z, the branch's only use of
// it, so that it waited for x's load (SASS, decode kernel: two trips to memory a row).
template <typename T, int VEC, int ITEMS, bool PREDICATED = false>
__device__ __forceinline__ float add_residual(Vec<T, VEC> (&zv)[ITEMS],
                                              const Vec<T, VEC> (&xv)[ITEMS], T* z_row, int nvec) {
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int j = threadIdx.x + i * blockDim.x;
    const bool in_row = j < nvec;
    if (PREDICATED || in_row) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        zv[i].v[k] = from_float<T>(to_float(xv[i].v[k]) + to_float(zv[i].v[k]));
        // past the row end: the row's first vector, left out (0, not f * 0: f may be inf)
        const float f = in_row ? to_float(zv[i].v[k]) : 0.0f;
        ss = fmaf(f, f, ss);
      }
      if constexpr (PREDICATED) {
        stablekernels::cuda::store_packed_if<T, VEC>(in_row, z_row + static_cast<int64_t>(j) * VEC,
                                                     zv[i]);
      } else {
        store_vec<T, VEC>(z_row + static_cast<int64_t>(j) * VEC, zv[i]);
      }
    }
  }
  return ss;
}

// Sum of squares of the slices a thread holds (items past the row end are skipped).
template <typename T, int VEC, int ITEMS>
__device__ __forceinline__ float slice_sum_squares(const Vec<T, VEC> (&v)[ITEMS], int nvec) {
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    if (threadIdx.x + i * blockDim.x < nvec) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        const float f = to_float(v[i].v[k]);
        ss += f * f;
      }
    }
  }
  return ss;
}

// Loads the weight vectors of items [G0, G0 + G) of a thread's slice (past the row end:
// the first vector, unused, as in load_slice). The loads have no dependence on each
// other, so they are issued back to back, one memory round trip for the group.
template <typename T, int VEC, int G0, int G>
__device__ __forceinline__ void load_weight(Vec<T, VEC> (&w)[G], const T* __restrict__ weight,
                                            int nvec) {
#pragma unroll
  for (int i = 0; i < G; ++i) {
    const int j = threadIdx.x + (G0 + i) * blockDim.x;
    w[i] = load_vec<T, VEC>(weight + static_cast<int64_t>(j < nvec ? j : 0) * VEC);
  }
}

// y[j] = v[j] * inv * w[j] for items [G0, G0 + G) of a thread's slice, w loaded.
template <typename T, int VEC, int ITEMS, int G0, int G>
__device__ __forceinline__ void store_scaled(T* y, const Vec<T, VEC> (&v)[ITEMS],
                                             const Vec<T, VEC> (&w)[G], float inv, int nvec) {
#pragma unroll
  for (int i = 0; i < G; ++i) {
    const int j = threadIdx.x + (G0 + i) * blockDim.x;
    if (j < nvec) {
      Vec<T, VEC> o;
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        o.v[k] = from_float<T>(to_float(v[G0 + i].v[k]) * inv * to_float(w[i].v[k]));
      }
      store_vec<T, VEC>(y + static_cast<int64_t>(j) * VEC, o);
    }
  }
}

// Items [G0, ITEMS) of store_normalized, GROUP weight vectors per memory round trip.
template <typename T, int VEC, int ITEMS, int GROUP, int G0>
__device__ __forceinline__ void store_normalized_from(T* y, const Vec<T, VEC> (&v)[ITEMS],
                                                      const T* __restrict__ weight, float inv,
                                                      int nvec) {
  if constexpr (G0 < ITEMS) {
    constexpr int G = ITEMS - G0 < GROUP ? ITEMS - G0 : GROUP;
    if constexpr (G == 1) {
      // One vector: loaded behind the item's own bound check (fewest registers).
      const int j = threadIdx.x + G0 * blockDim.x;
      if (j < nvec) {
        Vec<T, VEC> w[1] = {load_vec<T, VEC>(weight + static_cast<int64_t>(j) * VEC)};
        store_scaled<T, VEC, ITEMS, G0, 1>(y, v, w, inv, nvec);
      }
    } else {
      Vec<T, VEC> w[G];
      load_weight<T, VEC, G0, G>(w, weight, nvec);
      store_scaled<T, VEC, ITEMS, G0, G>(y, v, w, inv, nvec);
    }
    store_normalized_from<T, VEC, ITEMS, GROUP, G0 + G>(y, v, weight, inv, nvec);
  }
}

// y[j] = v[j] * inv * weight[j] for the slices a thread holds. The weight is read after
// the row's reduction, GROUP vectors at a time: each group's loads are issued together,
// so a thread waits for ITEMS / GROUP round trips (to L1/L2, the weight is hot), not one
// per item as when each load sat behind its own branch with the math and store of the
// item before it (SASS: LDG, wait, STG, branch, LDG, ...). GROUP bounds the registers
// the weight adds while the row is held.
template <typename T, int VEC, int ITEMS, int GROUP = (ITEMS < 4 ? ITEMS : 4)>
__device__ __forceinline__ void store_normalized(T* y, const Vec<T, VEC> (&v)[ITEMS],
                                                 const T* __restrict__ weight, float inv,
                                                 int nvec) {
  store_normalized_from<T, VEC, ITEMS, GROUP, 0>(y, v, weight, inv, nvec);
}

// Sum over the block, one __syncthreads a call: `partial` has two halves, used by
// alternate calls (`parity`), so a call's writes cannot overtake a slow warp still
// reading the previous call's values (it must first pass the barrier between them).
// Blocks of one warp reduce by shuffles only. blockDim.x must be a multiple of 32.
__device__ __forceinline__ float row_sum(float v, float (&partial)[2][32], int parity) {
  v = stablekernels::cuda::warp_sum(v);
  if (blockDim.x <= 32) {
    return v;
  }
  const int lane = threadIdx.x % 32;
  if (lane == 0) {
    partial[parity][threadIdx.x / 32] = v;
  }
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? partial[parity][lane] : 0.0f;
  return stablekernels::cuda::warp_sum(v);
}

// Resident blocks per SM of rms_norm_kernel: blocks of kRegisterKernelThreads as
// register_kernel_min_blocks says; larger blocks fill the SM's 2048 threads (at most
// 32 registers a thread), which the wide kernel (1024 threads x 2 vectors) fits.
template <typename T, int VEC, int ITEMS, int THREADS>
constexpr int rms_norm_kernel_min_blocks() {
  return THREADS == kRegisterKernelThreads ? register_kernel_min_blocks<T, VEC, ITEMS, 1>()
                                           : 2048 / THREADS;
}

// [rows, hidden] -> [rows, hidden], one block (of at most THREADS threads) per row. The
// row slice stays in registers (packed, as T) between the two phases; the weight is read
// in the second phase (from L1/L2, GROUP vectors per round trip: store_normalized).
template <typename T, int VEC, int ITEMS, int THREADS = kRegisterKernelThreads>
__global__ void __launch_bounds__(THREADS, (rms_norm_kernel_min_blocks<T, VEC, ITEMS, THREADS>()))
    rms_norm_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                    const T* __restrict__ weight, int64_t rows, int hidden, float eps) {
  stablekernels::cuda::pdl_enter();
  __shared__ float partial[2][32];
  const int nvec = hidden / VEC;
  int parity = 0;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x, parity ^= 1) {
    const T* x = in + in_rows.offset(row);
    T* y = out + out_rows.offset(row);
    Vec<T, VEC> xv[ITEMS];
    load_slice<T, VEC, ITEMS>(xv, x, nvec);
    const float ss = slice_sum_squares<T, VEC, ITEMS>(xv, nvec);
    const float inv = rsqrtf(row_sum(ss, partial, parity) / static_cast<float>(hidden) + eps);
    store_normalized<T, VEC, ITEMS>(y, xv, weight, inv, nvec);
  }
}

// rms_norm_two_pass_kernel's block size, and its block size for rows past kTwoPassThreads x
// NormPolicy::rms_norm_two_pass_max_items vectors.
constexpr int kTwoPassThreads = 512;
constexpr int kTwoPassWideThreads = 1024;

// [rows, hidden] -> [rows, hidden], one block of THREADS per row (grid == rows, no loop),
// rows of up to ITEMS x THREADS 16-byte vectors; torch.compile's shape for these rows. The first
// pass issues the thread's ITEMS loads together and sums their squares; the second reads the row
// again (from L1, where the first pass left it) with the weight, one vector at a time, and stores.
// The row's loads carry eviction priorities, in L1 and in L2: evict-last on the first read,
// evict-first on the second (and last), evict-last on the weight. Without the L2 priorities the
// same kernel ran as the register kernel (H200, bf16, us: 16384 x 8192 129.8 against 124.5 with
// them; 16384 x 16384 265.2 / 255.1). EXACT (rows of exactly ITEMS x THREADS vectors): no bounds,
// so the first loads wait for nothing but the row's address (each block's start is on the critical
// path: 4096 x 8192 33.8 -> 32.7 us without the bounds and the row loop). Otherwise items past the
// row end load the row's first vector (as load_slice), count 0 and store nothing (a predicated
// store: the second pass has no branch).
template <typename T, int ITEMS, bool EXACT, typename Rows, int THREADS = kTwoPassThreads>
__global__ void __launch_bounds__(THREADS)
    rms_norm_two_pass_kernel(T* out, Rows out_rows, const T* in, Rows in_rows,
                             const T* __restrict__ weight, int hidden, float eps) {
  stablekernels::cuda::pdl_enter();
  using stablekernels::cuda::Evict;
  using stablekernels::cuda::load16_evict;
  constexpr int VEC = stablekernels::cuda::kVec16<T>;
  __shared__ float partial[2][32];
  const int nvec = EXACT ? ITEMS * THREADS : hidden / VEC;
  const T* x = in + in_rows.offset(blockIdx.x);
  T* y = out + out_rows.offset(blockIdx.x);
  uint4 u[ITEMS];
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int j = threadIdx.x + i * THREADS;
    u[i] = load16_evict<Evict::kLast>(x + static_cast<int64_t>(EXACT || j < nvec ? j : 0) * VEC);
  }
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const bool in_row = EXACT || threadIdx.x + i * THREADS < nvec;
    const Vec<T, VEC> a = stablekernels::cuda::unpack<T, VEC>(u[i]);
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const float f = in_row ? to_float(a.v[k]) : 0.0f;  // 0, not f * 0: f may be inf
      ss = fmaf(f, f, ss);
    }
  }
  const float inv = rsqrtf(row_sum(ss, partial, 0) / static_cast<float>(hidden) + eps);
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int j = threadIdx.x + i * THREADS;
    const bool in_row = EXACT || j < nvec;
    const int64_t off = static_cast<int64_t>(in_row ? j : 0) * VEC;
    const Vec<T, VEC> a = stablekernels::cuda::unpack<T, VEC>(load16_evict<Evict::kFirst>(x + off));
    const Vec<T, VEC> w =
        stablekernels::cuda::unpack<T, VEC>(load16_evict<Evict::kLast>(weight + off));
    Vec<T, VEC> o;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      o.v[k] = from_float<T>(to_float(a.v[k]) * inv * to_float(w.v[k]));
    }
    stablekernels::cuda::store_packed_if<T, VEC>(in_row, y + off, o);
  }
}

// Few rows (decode): one block per row, grid == rows (no loop), the row's vectors and
// the weight's loaded together before the reduction, so the weight's round trip hides
// under the row's instead of following the reduction. Registers are no concern here
// (ITEMS <= 4, few blocks). One barrier (row_sum). Rows: RowIndexer, or StridedRows where
// both tensors' rows are one (size, stride) pair (rows.h: 8 bytes of parameters a tensor
// instead of 104; H200, bf16, under CUDA graphs 0.07-0.15 us less a call).
template <typename T, int VEC, int ITEMS, typename Rows>
__global__ void __launch_bounds__(1024)
    rms_norm_decode_kernel(T* out, Rows out_rows, const T* in, Rows in_rows,
                           const T* __restrict__ weight, int hidden, float eps) {
  stablekernels::cuda::pdl_enter();
  __shared__ float partial[2][32];
  const int nvec = hidden / VEC;
  const int64_t row = blockIdx.x;
  const T* x = in + in_rows.offset(row);
  Vec<T, VEC> xv[ITEMS];
  Vec<T, VEC> wv[ITEMS];
  load_slice<T, VEC, ITEMS>(xv, x, nvec);
  load_slice<T, VEC, ITEMS>(wv, weight, nvec);
  T* y = out + out_rows.offset(row);
  const float ss = slice_sum_squares<T, VEC, ITEMS>(xv, nvec);
  const float inv = rsqrtf(row_sum(ss, partial, 0) / static_cast<float>(hidden) + eps);
  store_scaled<T, VEC, ITEMS, 0, ITEMS>(y, xv, wv, inv, nvec);
}

// The register kernel in a persistent grid (about the resident blocks, each looping over
// rows). The next row's loads are issued before the current row is reduced and stored,
// so a block's loads stay in flight through its reduction and its weight reads, and the
// grid has no tail of partly filled waves beyond one row per block. A thread reads the
// same weight columns for every row of its block: after the first row they come from L1.
// Registers: two row slices (this row, the next) of ITEMS 16-byte vectors; the row
// offsets (a division for collapsed multi-dim layouts) are computed before the next row
// is loaded, so no call runs with both slices live. ITEMS <= 4 fits the 64 registers of
// a 1024-thread block. The weight comes two vectors per round trip (store_normalized):
// four would add 16 registers to the two slices and spill (bf16, ITEMS 4: 24 bytes of
// stack in the SASS).
template <typename T, int VEC, int ITEMS>
__global__ void __launch_bounds__(1024)
    rms_norm_persistent_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                               const T* __restrict__ weight, int64_t rows, int hidden, float eps) {
  stablekernels::cuda::pdl_enter();
  __shared__ float partial[2][32];
  const int nvec = hidden / VEC;
  Vec<T, VEC> xv[ITEMS];
  int64_t row = blockIdx.x;
  if (row >= rows) {
    return;  // not launched so: the grid is at most `rows` blocks
  }
  load_slice<T, VEC, ITEMS>(xv, in + in_rows.offset(row), nvec);
  for (int parity = 0; row < rows; row += gridDim.x, parity ^= 1) {
    const int64_t next = row + gridDim.x;
    T* y = out + out_rows.offset(row);
    Vec<T, VEC> xn[ITEMS];
    if (next < rows) {
      const T* x = in + in_rows.offset(next);
      load_slice<T, VEC, ITEMS>(xn, x, nvec);
    }
    const float ss = slice_sum_squares<T, VEC, ITEMS>(xv, nvec);
    const float inv = rsqrtf(row_sum(ss, partial, parity) / static_cast<float>(hidden) + eps);
    store_normalized<T, VEC, ITEMS, 2>(y, xv, weight, inv, nvec);
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      xv[i] = xn[i];
    }
  }
}

// Rows longer than the register kernels hold: two passes over the row.
template <typename T, int VEC>
__global__ void __launch_bounds__(1024)
    rms_norm_generic_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                            const T* __restrict__ weight, int64_t rows, int hidden, float eps) {
  stablekernels::cuda::pdl_enter();
  const int nvec = hidden / VEC;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + in_rows.offset(row);
    T* y = out + out_rows.offset(row);
    float ss = 0.0f;
    for (int j = threadIdx.x; j < nvec; j += blockDim.x) {
      const Vec<T, VEC> a = load_vec<T, VEC>(x + static_cast<int64_t>(j) * VEC);
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        const float f = to_float(a.v[k]);
        ss += f * f;
      }
    }
    const float inv = rsqrtf(block_sum(ss) / static_cast<float>(hidden) + eps);
    for (int j = threadIdx.x; j < nvec; j += blockDim.x) {
      const Vec<T, VEC> a = load_vec<T, VEC>(x + static_cast<int64_t>(j) * VEC);
      const Vec<T, VEC> w = load_vec<T, VEC>(weight + static_cast<int64_t>(j) * VEC);
      Vec<T, VEC> o;
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        o.v[k] = from_float<T>(to_float(a.v[k]) * inv * to_float(w.v[k]));
      }
      store_vec<T, VEC>(y + static_cast<int64_t>(j) * VEC, o);
    }
  }
}

// residual <- input + residual (rounded to T); input <- rms_norm(residual) * weight.
// The new residual slice stays in registers between the phases.
template <typename T, int VEC, int ITEMS>
__global__ void __launch_bounds__(kRegisterKernelThreads,
                                  (register_kernel_min_blocks<T, VEC, ITEMS, 2>()))
    fused_add_rms_norm_kernel(T* in, RowIndexer in_rows, T* res, RowIndexer res_rows,
                              const T* __restrict__ weight, int64_t rows, int hidden, float eps) {
  stablekernels::cuda::pdl_enter();
  const int nvec = hidden / VEC;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    T* x = in + in_rows.offset(row);
    T* z = res + res_rows.offset(row);
    Vec<T, VEC> xv[ITEMS];
    Vec<T, VEC> zv[ITEMS];
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < nvec) {
        const int64_t off = static_cast<int64_t>(j) * VEC;
        xv[i] = load_vec<T, VEC>(x + off);
        zv[i] = load_vec<T, VEC>(z + off);
      }
    }
    const float ss = add_residual<T, VEC, ITEMS>(zv, xv, z, nvec);
    const float inv = rsqrtf(block_sum(ss) / static_cast<float>(hidden) + eps);
    store_normalized<T, VEC, ITEMS>(x, zv, weight, inv, nvec);
  }
}

// fused_add_rms_norm on few rows (decode), and on up to
// NormPolicy::fused_add_rms_norm_decode_kernel_max_rows rows: one block per row, grid ==
// rows (no loop); input, residual and weight loaded together before the reduction (ITEMS
// <= 2, so registers are no concern), one barrier (row_sum). Rows as for
// rms_norm_decode_kernel.
template <typename T, int VEC, int ITEMS, typename Rows>
__global__ void __launch_bounds__(1024)
    fused_add_rms_norm_decode_kernel(T* in, Rows in_rows, T* res, Rows res_rows,
                                     const T* __restrict__ weight, int hidden, float eps) {
  stablekernels::cuda::pdl_enter();
  __shared__ float partial[2][32];
  const int nvec = hidden / VEC;
  const int64_t row = blockIdx.x;
  T* x = in + in_rows.offset(row);
  T* z = res + res_rows.offset(row);
  Vec<T, VEC> xv[ITEMS];
  Vec<T, VEC> zv[ITEMS];
  Vec<T, VEC> wv[ITEMS];
  load_slice<T, VEC, ITEMS>(xv, x, nvec);
  load_slice<T, VEC, ITEMS>(zv, z, nvec);
  load_slice<T, VEC, ITEMS, true>(wv, weight, nvec);
  const float ss = add_residual<T, VEC, ITEMS, true>(zv, xv, z, nvec);
  const float inv = rsqrtf(row_sum(ss, partial, 0) / static_cast<float>(hidden) + eps);
  store_scaled<T, VEC, ITEMS, 0, ITEMS>(x, zv, wv, inv, nvec);
}

template <typename T, int VEC>
__global__ void __launch_bounds__(1024)
    fused_add_rms_norm_generic_kernel(T* in, RowIndexer in_rows, T* res, RowIndexer res_rows,
                                      const T* __restrict__ weight, int64_t rows, int hidden,
                                      float eps) {
  stablekernels::cuda::pdl_enter();
  const int nvec = hidden / VEC;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    T* x = in + in_rows.offset(row);
    T* z = res + res_rows.offset(row);
    float ss = 0.0f;
    for (int j = threadIdx.x; j < nvec; j += blockDim.x) {
      const int64_t off = static_cast<int64_t>(j) * VEC;
      const Vec<T, VEC> a = load_vec<T, VEC>(x + off);
      const Vec<T, VEC> b = load_vec<T, VEC>(z + off);
      Vec<T, VEC> s;
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        s.v[k] = from_float<T>(to_float(a.v[k]) + to_float(b.v[k]));
        const float f = to_float(s.v[k]);
        ss += f * f;
      }
      store_vec<T, VEC>(z + off, s);
    }
    const float inv = rsqrtf(block_sum(ss) / static_cast<float>(hidden) + eps);
    // Each thread re-reads only the residual elements it wrote itself.
    for (int j = threadIdx.x; j < nvec; j += blockDim.x) {
      const int64_t off = static_cast<int64_t>(j) * VEC;
      const Vec<T, VEC> s = load_vec<T, VEC>(z + off);
      const Vec<T, VEC> w = load_vec<T, VEC>(weight + off);
      Vec<T, VEC> o;
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        o.v[k] = from_float<T>(to_float(s.v[k]) * inv * to_float(w.v[k]));
      }
      store_vec<T, VEC>(x + off, o);
    }
  }
}

}  // namespace stablekernels::norm::cuda
