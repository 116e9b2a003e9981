// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA kernels of the norm family. Torch-free: raw pointers, RowIndexer, stream.
//
// One block per row. The register kernels keep the whole row in registers
// (ITEMS vectors of VEC elements per thread), so each element is read from
// global memory once and written once: the minimal traffic, which is what a
// memory-bound op needs to reach the bandwidth ceiling. Rows too long for that
// use the generic kernel, which reads the row twice (the second time mostly
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

// y[j] = v[j] * inv * weight[j] for the slices a thread holds.
template <typename T, int VEC, int ITEMS>
__device__ __forceinline__ void store_normalized(T* y, const Vec<T, VEC> (&v)[ITEMS],
                                                 const T* __restrict__ weight, float inv,
                                                 int nvec) {
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int j = threadIdx.x + i * blockDim.x;
    if (j < nvec) {
      const Vec<T, VEC> w = load_vec<T, VEC>(weight + static_cast<int64_t>(j) * VEC);
      Vec<T, VEC> o;
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        o.v[k] = from_float<T>(to_float(v[i].v[k]) * inv * to_float(w.v[k]));
      }
      store_vec<T, VEC>(y + static_cast<int64_t>(j) * VEC, o);
    }
  }
}

// [rows, hidden] -> [rows, hidden]. The row slice stays in registers (packed, as T)
// between the two phases; the weight is read in the second phase (from L2).
template <typename T, int VEC, int ITEMS>
__global__ void __launch_bounds__(kRegisterKernelThreads,
                                  (register_kernel_min_blocks<T, VEC, ITEMS, 1>()))
    rms_norm_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                    const T* __restrict__ weight, int64_t rows, int hidden, float eps) {
  const int nvec = hidden / VEC;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + in_rows.offset(row);
    T* y = out + out_rows.offset(row);
    Vec<T, VEC> xv[ITEMS];
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < nvec) {
        xv[i] = load_vec<T, VEC>(x + static_cast<int64_t>(j) * VEC);
      }
    }
    const float ss = slice_sum_squares<T, VEC, ITEMS>(xv, nvec);
    const float inv = rsqrtf(block_sum(ss) / static_cast<float>(hidden) + eps);
    store_normalized<T, VEC, ITEMS>(y, xv, weight, inv, nvec);
  }
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

// The register kernel in a persistent grid (about the resident blocks, each looping over
// rows). The next row's loads are issued before the current row is reduced and stored,
// so a block's loads stay in flight through its reduction and its weight reads, and the
// grid has no tail of partly filled waves beyond one row per block. A thread reads the
// same weight columns for every row of its block: after the first row they come from L1.
// Registers: two row slices (this row, the next) of ITEMS 16-byte vectors; the row
// offsets (a division for collapsed multi-dim layouts) are computed before the next row
// is loaded, so no call runs with both slices live. ITEMS <= 4 fits the 64 registers of
// a 1024-thread block.
template <typename T, int VEC, int ITEMS>
__global__ void __launch_bounds__(1024)
    rms_norm_persistent_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                               const T* __restrict__ weight, int64_t rows, int hidden, float eps) {
  __shared__ float partial[2][32];
  const int nvec = hidden / VEC;
  Vec<T, VEC> xv[ITEMS];
  int64_t row = blockIdx.x;
  if (row < rows) {
    const T* x = in + in_rows.offset(row);
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < nvec) {
        xv[i] = load_vec<T, VEC>(x + static_cast<int64_t>(j) * VEC);
      }
    }
  }
  for (int parity = 0; row < rows; row += gridDim.x, parity ^= 1) {
    const int64_t next = row + gridDim.x;
    T* y = out + out_rows.offset(row);
    Vec<T, VEC> xn[ITEMS];
    if (next < rows) {
      const T* x = in + in_rows.offset(next);
#pragma unroll
      for (int i = 0; i < ITEMS; ++i) {
        const int j = threadIdx.x + i * blockDim.x;
        if (j < nvec) {
          xn[i] = load_vec<T, VEC>(x + static_cast<int64_t>(j) * VEC);
        }
      }
    }
    const float ss = slice_sum_squares<T, VEC, ITEMS>(xv, nvec);
    const float inv = rsqrtf(row_sum(ss, partial, parity) / static_cast<float>(hidden) + eps);
    store_normalized<T, VEC, ITEMS>(y, xv, weight, inv, nvec);
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
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < nvec) {
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
          zv[i].v[k] = from_float<T>(to_float(xv[i].v[k]) + to_float(zv[i].v[k]));
          const float f = to_float(zv[i].v[k]);
          ss += f * f;
        }
        store_vec<T, VEC>(z + static_cast<int64_t>(j) * VEC, zv[i]);
      }
    }
    const float inv = rsqrtf(block_sum(ss) / static_cast<float>(hidden) + eps);
    store_normalized<T, VEC, ITEMS>(x, zv, weight, inv, nvec);
  }
}

template <typename T, int VEC>
__global__ void __launch_bounds__(1024)
    fused_add_rms_norm_generic_kernel(T* in, RowIndexer in_rows, T* res, RowIndexer res_rows,
                                      const T* __restrict__ weight, int64_t rows, int hidden,
                                      float eps) {
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
