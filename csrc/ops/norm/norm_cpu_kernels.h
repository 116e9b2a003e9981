// SPDX-License-Identifier: Apache-2.0
#pragma once
// CPU row kernels of the norm family, for T = float, torch's header-only Half or BFloat16.
// float32 rows are read and written in place; 16-bit rows go through float32 chunks on the
// stack, one loop each way (widen, the arithmetic, narrow), so each loop vectorizes: converted
// element by element inside the arithmetic, float16 rows took 2.6 ms on 512 x 1024 where the
// eager ops take about as long (bf16 0.3, float32 0.09). Each body is compiled for the
// baseline, AVX2 and AVX-512 (norm_cpu.cpp, core/cpu_isa.h).

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/cpu_isa.h"
#include "stablekernels/rows.h"

namespace stablekernels::norm::cpu {

// Independent partial sums of the squares, so the compiler can vectorize the sum (an
// AVX-512 register, or two AVX2 ones).
constexpr int kLanes = 16;

__attribute__((always_inline)) inline void add_squares(float (&acc)[kLanes], const float* x,
                                                       int64_t n) {
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      acc[l] += x[j + l] * x[j + l];
    }
  }
  for (; j < n; ++j) {
    acc[0] += x[j] * x[j];
  }
}

__attribute__((always_inline)) inline float lanes_sum(const float (&acc)[kLanes]) {
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) {
    s += acc[l];
  }
  return s;
}

// 1 / sqrt(mean of the squares + eps) from the partial sums.
__attribute__((always_inline)) inline float inv_rms(const float (&acc)[kLanes], int64_t n,
                                                    float eps) {
  return 1.0f / std::sqrt(lanes_sum(acc) / static_cast<float>(n) + eps);
}

// acc += the squares of x[0, n).
template <Isa I, typename T>
__attribute__((always_inline)) inline void sum_squares(IsaTag<I> isa, float (&acc)[kLanes],
                                                       const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    add_squares(acc, x, n);
  } else {
    float a[kCpuChunk];
    for (int64_t j0 = 0; j0 < n; j0 += kCpuChunk) {
      const int64_t m = std::min(kCpuChunk, n - j0);
      widen(isa, a, x + j0, m);
      add_squares(acc, a, m);
    }
  }
}

// rows [row_begin, row_end): out = x * rsqrt(mean(x^2) + eps) * w
template <Isa I, typename T>
__attribute__((always_inline)) inline void rms_norm_rows(IsaTag<I> isa, T* out,
                                                         const RowIndexer& out_rows, const T* in,
                                                         const RowIndexer& in_rows, const T* weight,
                                                         int64_t hidden, float eps,
                                                         int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* x = in + in_rows.offset(r);
    float acc[kLanes] = {};
    sum_squares(isa, acc, x, hidden);
    const float inv = inv_rms(acc, hidden, eps);
    map_two(isa, out + out_rows.offset(r), x, weight, hidden,
            [inv](float v, float w) { return v * inv * w; });
  }
}

// rows [row_begin, row_end): res = x + res; x = rms_norm(res) * w
template <Isa I, typename T>
__attribute__((always_inline)) inline void fused_add_rms_norm_rows(
    IsaTag<I> isa, T* in, const RowIndexer& in_rows, T* res, const RowIndexer& res_rows,
    const T* weight, int64_t hidden, float eps, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    T* x = in + in_rows.offset(r);
    T* z = res + res_rows.offset(r);
    // the residual rounded to T; the norm is of the residual as stored (each chunk's squares
    // summed from L1 right after it is)
    float acc[kLanes] = {};
    map_two(
        isa, z, x, z, hidden, [](float v, float u) { return v + u; },
        [&](int64_t begin, int64_t m) { sum_squares(isa, acc, z + begin, m); });
    const float inv = inv_rms(acc, hidden, eps);
    map_two(isa, x, z, weight, hidden, [inv](float v, float w) { return v * inv * w; });
  }
}

}  // namespace stablekernels::norm::cpu
