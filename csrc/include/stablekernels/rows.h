// SPDX-License-Identifier: Apache-2.0
#pragma once
// Row addressing for ops over the last dimension of a tensor. Torch-free.
//
// The leading dims of a tensor [..., hidden] are "rows". They may have any
// strides (a row stride larger than hidden, a slice of a bigger tensor, ...);
// only the last dim must be contiguous. The host collapses the leading dims into
// as few (size, stride) pairs as their strides allow, usually one.

#include <cstdint>

#if defined(__CUDACC__)
#define STABLEKERNELS_HOST_DEVICE __host__ __device__ __forceinline__
#define STABLEKERNELS_UNROLL _Pragma("unroll")
#else
#define STABLEKERNELS_HOST_DEVICE inline
#define STABLEKERNELS_UNROLL
#endif

namespace stablekernels {

// Leading dims that cannot be collapsed beyond this count are rejected with an error.
constexpr int kMaxRowDims = 6;

struct RowIndexer {
  int ndim = 1;                        // number of collapsed leading dims, >= 1
  int64_t sizes[kMaxRowDims] = {1};    // outermost first
  int64_t strides[kMaxRowDims] = {0};  // in elements

  // Element offset of the first element of row `row` (row-major over the leading dims).
  STABLEKERNELS_HOST_DEVICE int64_t offset(int64_t row) const {
    if (ndim == 1) {
      return row * strides[0];
    }
    int64_t off = 0;
    STABLEKERNELS_UNROLL
    for (int d = kMaxRowDims - 1; d >= 0; --d) {
      if (d < ndim) {
        const int64_t s = sizes[d];
        off += (row % s) * strides[d];
        row /= s;
      }
    }
    return off;
  }

  // True when every row starts at a multiple of `n` elements from the base pointer.
  bool strides_multiple_of(int64_t n) const {
    for (int d = 0; d < ndim; ++d) {
      if (sizes[d] > 1 && strides[d] % n != 0) {
        return false;
      }
    }
    return true;
  }
};

}  // namespace stablekernels
