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

// n / d for a divisor d >= 1 fixed at launch and a dividend 0 <= n < 2^31: a multiply-high,
// an add and a shift instead of an integer division (a 64-bit division is a subroutine of
// dozens of instructions on the GPU, a 32-bit one about twenty). With s = ceil(log2 d) and
// m = floor(2^32 (2^s - d) / d) + 1, which fits 32 bits, n / d = (mulhi(n, m) + n) >> s
// (Granlund and Montgomery, "Division by invariant integers using multiplication", 1994);
// mulhi(n, m) < n keeps the sum below 2^32.
struct FastDivU31 {
  uint32_t m = 1;
  uint32_t s = 0;

  FastDivU31() = default;
  explicit FastDivU31(uint32_t d) {
    while ((uint64_t{1} << s) < d) {
      ++s;
    }
    m = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << s) - d)) / d + 1);
  }

  STABLEKERNELS_HOST_DEVICE uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t hi = __umulhi(n, m);
#else
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(n) * m) >> 32);
#endif
    return (hi + n) >> s;
  }
};

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

// The rows of a RowIndexer of one collapsed dim (ndim == 1): the same offsets from 8 bytes of
// kernel parameters instead of RowIndexer's 104. A decode launch waits on its first reads of
// its parameters (constant cache misses, one per 64-byte line touched): the decode kernels
// take their rows as a template type, StridedRows where the layout allows (visit_rows).
struct StridedRows {
  int64_t stride = 0;

  STABLEKERNELS_HOST_DEVICE int64_t offset(int64_t row) const { return row * stride; }
};

// f(a', b'): a and b as StridedRows where both have one dim, else as they are.
template <typename F>
void visit_rows(const RowIndexer& a, const RowIndexer& b, F&& f) {
  if (a.ndim == 1 && b.ndim == 1) {
    f(StridedRows{a.strides[0]}, StridedRows{b.strides[0]});
  } else {
    f(a, b);
  }
}

}  // namespace stablekernels
