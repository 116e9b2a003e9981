// SPDX-License-Identifier: Apache-2.0
#pragma once
// hadamard_math.h: sizes, the normalization and the CPU row transform. Torch-free.
//
// The transform of a row x of n = 2^L elements is y = x @ H_n / sqrt(n) with H_n the
// Sylvester-ordered Hadamard matrix (H_1 = [1], H_2m = [[H_m, H_m], [H_m, -H_m]]). H_n
// is the Kronecker product of L copies of H_2, one per bit of the element index, so
// the transform is L butterfly stages, one per bit, in any order: the stage of bit b
// replaces each pair (lo, hi) = (x[i], x[i | 2^b]) with i's bit b clear by
// (lo + hi, lo - hi).

#include <cmath>
#include <cstdint>

namespace stablekernels::hadamard {

constexpr int kMaxLogN = 15;
constexpr int64_t kMaxN = int64_t{1} << kMaxLogN;  // 32768

inline bool is_supported_size(int64_t n) {
  return n >= 1 && n <= kMaxN && (n & (n - 1)) == 0;
}

inline int log2_of(int64_t n) {
  int l = 0;
  while ((int64_t{1} << l) < n) {
    ++l;
  }
  return l;
}

// 1 / sqrt(n), rounded once to float32.
inline float normalization(int64_t n) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
}

// In-place unnormalized transform of n = 2^L float32 values (always inlined, so that each
// instruction-set build of the CPU kernel compiles it for its own set).
__attribute__((always_inline)) inline void fwht_inplace(float* v, int64_t n) {
  for (int64_t h = 1; h < n; h *= 2) {
    for (int64_t i = 0; i < n; i += 2 * h) {
      for (int64_t j = i; j < i + h; ++j) {
        const float lo = v[j];
        const float hi = v[j + h];
        v[j] = lo + hi;
        v[j + h] = lo - hi;
      }
    }
  }
}

}  // namespace stablekernels::hadamard
