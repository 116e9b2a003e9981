// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA kernels of the quantization family. Torch-free: raw pointers, RowIndexer, stream.
//
// Per tensor (dynamic_scaled_fp8_quant): tensor_amax_kernel reduces each block's
// slice to one scale candidate, max(amax / 448, kMinScale), and folds it into the
// scale buffer (zeroed beforehand) with atomicMax on its bits: positive floats order
// like their bit patterns as signed ints, and division by 448 is monotonic, so the
// maximum candidate is exactly the scale of the whole tensor. quantize_kernel then
// reads the scale and converts; static_scaled_fp8_quant runs only the latter.
// Both walk (row, vector) pairs in a grid-stride loop with 16-byte loads where the
// layout allows; a tensor with contiguous rows is walked as one long row.
//
// Per token: one block per row. The register kernel keeps the row slice in registers
// between the amax and the conversion, so each input byte is read once; rows too long
// for it use the generic kernel, which reads the row twice (the second time mostly
// from L2). All math is float32.

#include <cuda_fp8.h>

#include <cstdint>

#include "ops/quantization/quantization_math.h"
#include "stablekernels/cuda_common.cuh"
#include "stablekernels/rows.h"

namespace stablekernels::quantization::cuda {

using stablekernels::cuda::block_max;
using stablekernels::cuda::load_vec;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::Vec;

constexpr int kRowKernelThreads = 256;
constexpr int kGenericThreads = 1024;
constexpr int kFlatThreads = 256;
constexpr int kFlatUnroll = 4;

// The fp8 bits of q: NaN -> kFp8NaN, +-inf and |q| > 448 -> +-448 (SATFINITE), else round
// to nearest even. Matches the CPU conversion bit for bit.
__device__ __forceinline__ uint8_t to_fp8_bits(float q) {
  if (isnan(q)) {
    return kFp8NaN;
  }
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(q, __NV_SATFINITE, __NV_E4M3));
}

template <typename T, int VEC>
__device__ __forceinline__ Vec<uint8_t, VEC> quantize_vec(const Vec<T, VEC>& v, float scale) {
  Vec<uint8_t, VEC> o;
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    o.v[k] = to_fp8_bits(to_float(v.v[k]) / scale);
  }
  return o;
}

template <typename T, int VEC>
__device__ __forceinline__ float vec_amax(const Vec<T, VEC>& v, float m) {
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    m = fmaxf(m, finite_abs(to_float(v.v[k])));
  }
  return m;
}

// The per-tensor kernels walk a [rows, nvec] grid of vectors in one of two ways.
// DENSE (rows == 1: a single row, or rows back to back in every tensor the kernel
// touches): a flat grid-stride loop, kFlatUnroll independent loads in flight per thread.
// Otherwise: tiles of blockDim.x vectors of one row, so a row's offset is computed once
// per tile (RowIndexer::offset divides by each collapsed dim size).
template <typename T, int VEC, bool DENSE, typename F>
__device__ __forceinline__ void for_each_vec(const T* in, const RowIndexer& in_rows, int64_t rows,
                                             int64_t nvec, F&& f) {
  if constexpr (DENSE) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; base < nvec;
         base += step * kFlatUnroll) {
      Vec<T, VEC> v[kFlatUnroll];
#pragma unroll
      for (int u = 0; u < kFlatUnroll; ++u) {
        const int64_t i = base + u * step;
        if (i < nvec) {
          v[u] = load_vec<T, VEC>(in + i * VEC);
        }
      }
#pragma unroll
      for (int u = 0; u < kFlatUnroll; ++u) {
        const int64_t i = base + u * step;
        if (i < nvec) {
          f(int64_t{0}, i, v[u]);
        }
      }
    }
  } else {
    const int64_t tiles_per_row = (nvec + blockDim.x - 1) / blockDim.x;
    const int64_t tiles = rows * tiles_per_row;
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int64_t row = tile / tiles_per_row;
      const int64_t j = (tile - row * tiles_per_row) * blockDim.x + threadIdx.x;
      if (j < nvec) {
        f(row, j, load_vec<T, VEC>(in + in_rows.offset(row) + j * VEC));
      }
    }
  }
}

// scale <- max(scale, max(amax(this block's slice) / 448, kMinScale)) by atomicMax on the bits.
template <typename T, int VEC, bool DENSE>
__global__ void __launch_bounds__(kFlatThreads)
    tensor_amax_kernel(float* scale, const T* in, RowIndexer in_rows, int64_t rows, int64_t nvec) {
  float m = 0.0f;
  for_each_vec<T, VEC, DENSE>(in, in_rows, rows, nvec, [&](int64_t, int64_t, const Vec<T, VEC>& v) {
    m = vec_amax<T, VEC>(v, m);
  });
  m = block_max(m);
  if (threadIdx.x == 0) {
    atomicMax(reinterpret_cast<int*>(scale), __float_as_int(scale_from_amax(m)));
  }
}

// out <- fp8(in / *scale), element by element.
template <typename T, int VEC, bool DENSE>
__global__ void __launch_bounds__(kFlatThreads)
    quantize_kernel(uint8_t* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                    const float* scale, int64_t rows, int64_t nvec) {
  const float s = *scale;
  for_each_vec<T, VEC, DENSE>(in, in_rows, rows, nvec,
                              [&](int64_t row, int64_t j, const Vec<T, VEC>& v) {
                                uint8_t* y = DENSE ? out : out + out_rows.offset(row);
                                store_vec<uint8_t, VEC>(y + j * VEC, quantize_vec<T, VEC>(v, s));
                              });
}

// The scale of a row with absolute maximum m (scale_ub: NaN when absent; fminf ignores it).
__device__ __forceinline__ float row_scale(float m, float ub) {
  return scale_from_amax(fminf(m, ub));
}

// One block per row; the row slice (ITEMS vectors per thread) stays in registers.
template <typename T, int VEC, int ITEMS>
__global__ void __launch_bounds__(kRowKernelThreads)
    per_token_kernel(uint8_t* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                     float* scale, int64_t scale_stride, const float* scale_ub, int64_t rows,
                     int hidden) {
  const int nvec = hidden / VEC;
  const float ub = scale_ub != nullptr ? *scale_ub : NAN;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + in_rows.offset(row);
    uint8_t* y = out + out_rows.offset(row);
    Vec<T, VEC> xv[ITEMS];
    float m = 0.0f;
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < nvec) {
        xv[i] = load_vec<T, VEC>(x + static_cast<int64_t>(j) * VEC);
        m = vec_amax<T, VEC>(xv[i], m);
      }
    }
    const float s = row_scale(block_max(m), ub);
    if (threadIdx.x == 0) {
      scale[row * scale_stride] = s;
    }
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      const int j = threadIdx.x + i * blockDim.x;
      if (j < nvec) {
        store_vec<uint8_t, VEC>(y + static_cast<int64_t>(j) * VEC, quantize_vec<T, VEC>(xv[i], s));
      }
    }
  }
}

// Rows longer than the register kernel holds: two passes over the row.
template <typename T, int VEC>
__global__ void __launch_bounds__(kGenericThreads)
    per_token_generic_kernel(uint8_t* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                             float* scale, int64_t scale_stride, const float* scale_ub,
                             int64_t rows, int hidden) {
  const int nvec = hidden / VEC;
  const float ub = scale_ub != nullptr ? *scale_ub : NAN;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + in_rows.offset(row);
    uint8_t* y = out + out_rows.offset(row);
    float m = 0.0f;
    for (int j = threadIdx.x; j < nvec; j += blockDim.x) {
      m = vec_amax<T, VEC>(load_vec<T, VEC>(x + static_cast<int64_t>(j) * VEC), m);
    }
    const float s = row_scale(block_max(m), ub);
    if (threadIdx.x == 0) {
      scale[row * scale_stride] = s;
    }
    for (int j = threadIdx.x; j < nvec; j += blockDim.x) {
      const int64_t off = static_cast<int64_t>(j) * VEC;
      store_vec<uint8_t, VEC>(y + off, quantize_vec<T, VEC>(load_vec<T, VEC>(x + off), s));
    }
  }
}

}  // namespace stablekernels::quantization::cuda
