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

// Three stages at once (bits b, b + 1, b + 2; h = 2^b) on the 8 elements x[0], x[h], ...,
// x[7h]: the butterflies of stage h, then 2h, then 4h, as fwht_inplace would run them one
// stage at a time.
__attribute__((always_inline)) inline void radix8_butterflies(float* x, int64_t h) {
  const float b0 = x[0] + x[h];
  const float b1 = x[0] - x[h];
  const float b2 = x[2 * h] + x[3 * h];
  const float b3 = x[2 * h] - x[3 * h];
  const float b4 = x[4 * h] + x[5 * h];
  const float b5 = x[4 * h] - x[5 * h];
  const float b6 = x[6 * h] + x[7 * h];
  const float b7 = x[6 * h] - x[7 * h];
  const float c0 = b0 + b2;
  const float c1 = b1 + b3;
  const float c2 = b0 - b2;
  const float c3 = b1 - b3;
  const float c4 = b4 + b6;
  const float c5 = b5 + b7;
  const float c6 = b4 - b6;
  const float c7 = b5 - b7;
  x[0] = c0 + c4;
  x[h] = c1 + c5;
  x[2 * h] = c2 + c6;
  x[3 * h] = c3 + c7;
  x[4 * h] = c0 - c4;
  x[5 * h] = c1 - c5;
  x[6 * h] = c2 - c6;
  x[7 * h] = c3 - c7;
}

// In-place unnormalized transform of n = 2^L float32 values: the stages from bit 0 up, three
// at a time while three are left (one pass over the row for three stages), then one at a
// time. Each element sees the same additions in the same order as one stage at a time
// (bit-identical results), and the inner loops over j, whose iterations touch disjoint
// elements (hence ivdep), vectorize: 1.6-2.0 ns an element one stage at a time against
// 0.4-0.7 (n = 128 to 8192, one Zen 5 core, any of the three builds). Always inlined, so
// that each instruction-set build of the CPU kernel compiles it for its own set.
__attribute__((always_inline)) inline void fwht_inplace(float* v, int64_t n) {
  int64_t h = 1;
  if (n >= 8) {
    // bits 0-2 apart: a loop over the blocks of 8, which vectorizes across them
    for (int64_t i = 0; i < n; i += 8) {
      radix8_butterflies(v + i, 1);
    }
    h = 8;
  }
  for (; 8 * h <= n; h *= 8) {
    for (int64_t i = 0; i < n; i += 8 * h) {
#pragma GCC ivdep
      for (int64_t j = i; j < i + h; ++j) {
        radix8_butterflies(v + j, h);
      }
    }
  }
  for (; h < n; h *= 2) {
    for (int64_t i = 0; i < n; i += 2 * h) {
#pragma GCC ivdep
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
