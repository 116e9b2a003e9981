// SPDX-License-Identifier: Apache-2.0
#pragma once
// The activation functions, in float32, shared by the CPU and CUDA kernels. Torch-free.

#include <math.h>

#include "stablekernels/rows.h"

namespace stablekernels::activation {

// torch.nn.functional.silu
struct Silu {
  static STABLEKERNELS_HOST_DEVICE float apply(float x) { return x / (1.0f + expf(-x)); }
};

// torch.nn.functional.gelu(x, approximate="none") = x * Phi(x)
struct Gelu {
  static STABLEKERNELS_HOST_DEVICE float apply(float x) {
    constexpr float kInvSqrt2 = 0.70710678118654752440f;
    return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
  }
};

// torch.nn.functional.gelu(x, approximate="tanh")
struct GeluTanh {
  static STABLEKERNELS_HOST_DEVICE float apply(float x) {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f;
    constexpr float kCoeff = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + kCoeff * x * x * x)));
  }
};

}  // namespace stablekernels::activation
