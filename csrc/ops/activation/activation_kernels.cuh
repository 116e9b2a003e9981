// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA kernel of the activation family. Torch-free.
//
// grid.x walks rows, grid.y splits a row into chunks of blockDim.x vectors; each
// thread reads VEC elements of each half with one access each and writes VEC
// results: every byte moves once.

#include <cstdint>

#include "stablekernels/cuda_common.cuh"
#include "stablekernels/rows.h"

namespace stablekernels::activation::cuda {

using stablekernels::cuda::from_float;
using stablekernels::cuda::load_vec;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::Vec;

// input [rows, 2d] -> out [rows, d] = Act(input[:, :d]) * input[:, d:]
// Each thread issues all UNROLL pairs of loads before computing, to keep enough
// bytes in flight per SM to saturate HBM.
template <typename Act, typename T, int VEC, int UNROLL>
__global__ void act_and_mul_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                                   int64_t rows, int64_t d) {
  const int64_t nvec = d / VEC;
  const int64_t chunk = static_cast<int64_t>(blockDim.x) * UNROLL;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + in_rows.offset(row);
    const T* g = x + d;
    T* y = out + out_rows.offset(row);
    for (int64_t base = static_cast<int64_t>(blockIdx.y) * chunk; base < nvec;
         base += chunk * gridDim.y) {
      Vec<T, VEC> a[UNROLL];
      Vec<T, VEC> b[UNROLL];
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const int64_t j = base + u * static_cast<int64_t>(blockDim.x) + threadIdx.x;
        if (j < nvec) {
          a[u] = load_vec<T, VEC>(x + j * VEC);
          b[u] = load_vec<T, VEC>(g + j * VEC);
        }
      }
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const int64_t j = base + u * static_cast<int64_t>(blockDim.x) + threadIdx.x;
        if (j < nvec) {
          Vec<T, VEC> o;
#pragma unroll
          for (int k = 0; k < VEC; ++k) {
            o.v[k] = from_float<T>(Act::apply(to_float(a[u].v[k])) * to_float(b[u].v[k]));
          }
          store_vec<T, VEC>(y + j * VEC, o);
        }
      }
    }
  }
}

}  // namespace stablekernels::activation::cuda
