// SPDX-License-Identifier: Apache-2.0
#pragma once
// quantization_math.h: the float32 math shared by the CPU and CUDA kernels of the
// quantization family. Torch-free.
//
// Rules (the CPU and CUDA kernels follow them bit for bit):
// - q = input / scale in float32 (IEEE division, round to nearest even);
// - NaN q gives the fp8 NaN 0x7F whatever its sign; +-inf and |q| > 448 saturate
//   to +-448; the rest rounds to the nearest fp8 e4m3fn value, ties to even;
// - amax takes |x| over the finite values only: NaN and +-inf do not move a scale;
// - a dynamic scale is max(amax / 448, kMinScale), never 0 or NaN.

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "stablekernels/rows.h"

namespace stablekernels::quantization {

// Largest finite float8_e4m3fn value.
constexpr float kFp8Max = 448.0f;
// Smallest dynamic scale: an all-zero (or all non-finite) row or tensor gets this scale.
constexpr float kMinScale = 1.0f / (448.0f * 512.0f);
// The bits of the float8_e4m3fn NaN every NaN quantizes to.
constexpr uint8_t kFp8NaN = 0x7F;

// |x| when x is finite, else 0 (the contribution of x to an amax).
STABLEKERNELS_HOST_DEVICE float finite_abs(float x) {
  const float a = fabsf(x);
  return a <= FLT_MAX ? a : 0.0f;
}

// The scale of a block with absolute maximum `amax` (>= 0, finite).
STABLEKERNELS_HOST_DEVICE float scale_from_amax(float amax) {
  return fmaxf(amax / kFp8Max, kMinScale);
}

// Clamps to [-448, 448]; NaN stays NaN (comparisons with NaN are false).
STABLEKERNELS_HOST_DEVICE float saturate(float q) {
  return q > kFp8Max ? kFp8Max : (q < -kFp8Max ? -kFp8Max : q);
}

// The float8_e4m3fn bits of q under the rules (NaN -> kFp8NaN, +-inf and |q| > 448 ->
// +-448, the rest to nearest, ties to even) in integer operations and selects only, so
// that a loop of it vectorizes (the CPU kernels; the CUDA ones convert in hardware). On the
// bits m of |q|, clamped to those of 448 (inf too; NaN is replaced at the end):
// |q| >= 2^-6 (a normal fp8): the 23 mantissa bits rounded to 3 by an add of 2^19 - 1 plus
// the lowest kept bit (a carry moves into the exponent), the exponent rebiased from 127 to
// 7. |q| < 2^-6 (a subnormal, k * 2^-9): |q| + 2^14, a float whose last mantissa bit is
// worth 2^-9, is |q| rounded to a multiple of 2^-9 by the float add itself; k (0-8, 8 being
// the smallest normal's bits) is its bits less those of 2^14. The selects are masks
// (select_bits), which compilers keep as such. Checked for every float32 against a
// reference built from the format's definition (ci/tests/fp8_convert_check.cpp, a farm
// test); the same sweep against torch's Float8_e4m3fn conversion also found no difference.
inline uint32_t select_bits(bool c, uint32_t x, uint32_t y) {  // c ? x : y, as masks
  const uint32_t mask = 0u - static_cast<uint32_t>(c);
  return (x & mask) | (y & ~mask);
}
inline uint8_t fp8_e4m3_bits(float q) {
  constexpr uint32_t kMaxBits = 0x43E00000u;        // 448.0f
  constexpr uint32_t kMinNormalBits = 0x3C800000u;  // 2^-6
  constexpr uint32_t kMagicBits = 0x46800000u;      // 2^14
  uint32_t qb = 0;
  memcpy(&qb, &q, sizeof(qb));
  const uint32_t abs_bits = qb & 0x7FFFFFFFu;
  const uint32_t m = select_bits(abs_bits < kMaxBits, abs_bits, kMaxBits);
  const uint32_t normal = (m + 0x7FFFFu + ((m >> 20) & 1u) - (120u << 23)) >> 20;
  float a = 0.0f;
  memcpy(&a, &m, sizeof(a));
  const float d = a + 16384.0f;
  uint32_t db = 0;
  memcpy(&db, &d, sizeof(db));
  const uint32_t bits =
      select_bits(m < kMinNormalBits, db - kMagicBits, normal) | ((qb >> 24) & 0x80u);
  return static_cast<uint8_t>(select_bits(abs_bits > 0x7F800000u, kFp8NaN, bits));
}

}  // namespace stablekernels::quantization
