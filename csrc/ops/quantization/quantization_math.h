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

}  // namespace stablekernels::quantization
