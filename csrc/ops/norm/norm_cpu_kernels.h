// SPDX-License-Identifier: Apache-2.0
#pragma once
// CPU row kernels of the norm family. Torch-free: T is any type convertible to
// and from float (float, and torch's header-only Half / BFloat16).

#include <cmath>
#include <cstdint>

#include "stablekernels/rows.h"

namespace stablekernels::norm::cpu {

// Sum of squares with independent partial sums, so the compiler can vectorize.
template <typename T>
inline float sum_squares(const T* x, int64_t n) {
  constexpr int kLanes = 8;
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float v = static_cast<float>(x[j + l]);
      acc[l] += v * v;
    }
  }
  for (; j < n; ++j) {
    const float v = static_cast<float>(x[j]);
    acc[0] += v * v;
  }
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) {
    s += acc[l];
  }
  return s;
}

// rows [row_begin, row_end): out = x * rsqrt(mean(x^2) + eps) * w
template <typename T>
void rms_norm_rows(T* out, const RowIndexer& out_rows, const T* in, const RowIndexer& in_rows,
                   const T* weight, int64_t hidden, float eps, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* x = in + in_rows.offset(r);
    T* y = out + out_rows.offset(r);
    const float inv = 1.0f / std::sqrt(sum_squares(x, hidden) / static_cast<float>(hidden) + eps);
    for (int64_t j = 0; j < hidden; ++j) {
      y[j] = static_cast<T>(static_cast<float>(x[j]) * inv * static_cast<float>(weight[j]));
    }
  }
}

// rows [row_begin, row_end): res = x + res; x = rms_norm(res) * w
template <typename T>
void fused_add_rms_norm_rows(T* in, const RowIndexer& in_rows, T* res, const RowIndexer& res_rows,
                             const T* weight, int64_t hidden, float eps, int64_t row_begin,
                             int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    T* x = in + in_rows.offset(r);
    T* z = res + res_rows.offset(r);
    for (int64_t j = 0; j < hidden; ++j) {
      z[j] = static_cast<T>(static_cast<float>(x[j]) + static_cast<float>(z[j]));
    }
    const float inv = 1.0f / std::sqrt(sum_squares(z, hidden) / static_cast<float>(hidden) + eps);
    for (int64_t j = 0; j < hidden; ++j) {
      x[j] = static_cast<T>(static_cast<float>(z[j]) * inv * static_cast<float>(weight[j]));
    }
  }
}

}  // namespace stablekernels::norm::cpu
