// SPDX-License-Identifier: Apache-2.0
#pragma once
// The activation functions, in float32, shared by the CPU and CUDA kernels. Torch-free.
//
// Each activation has two forms:
//  - apply: the exact one (expf, an IEEE division, erff, tanhf), which the CUDA kernels use
//    for float32;
//  - fast<P>: branch-free float32 arithmetic over a primitive set P, which the CPU kernels
//    use for every dtype (except Gelu: activation_cpu.cpp has a faster form of its own) and
//    the CUDA kernels for float16 / bfloat16. Only the primitives
//    differ between the two: a polynomial 2^x and IEEE division on the CPU (vectorizable),
//    ex2.approx / rcp.approx on the GPU (one MUFU each). P provides
//      static float exp2(float x);                 // 2^x, inf above the float range, 0 below
//      static float div(float a, float b);         // a / b
//      static float rcp(float x);                  // 1 / x
//      static float fma(float a, float b, float c);  // a * b + c, fused or not
//    The exponents are taken in base 2 with log2(e) folded into the constants, so the GPU
//    computes them with the same few FMAs it would feed ex2 with by hand.

#include <math.h>

#include "stablekernels/rows.h"

namespace stablekernels::activation {

constexpr float kLog2e = 1.44269504088896340736f;

// torch.nn.functional.silu
struct Silu {
  static STABLEKERNELS_HOST_DEVICE float apply(float x) { return x / (1.0f + expf(-x)); }

  // x / (1 + e^-x): e^-x = inf for x below about -88 gives -0, the limit.
  template <typename P>
  static STABLEKERNELS_HOST_DEVICE float fast(float x) {
    return P::div(x, 1.0f + P::exp2(x * -kLog2e));
  }
};

// torch.nn.functional.gelu(x, approximate="none") = x * Phi(x)
struct Gelu {
  static STABLEKERNELS_HOST_DEVICE float apply(float x) {
    constexpr float kInvSqrt2 = 0.70710678118654752440f;
    return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
  }

  // x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2, with the erfc of Numerical Recipes (erfcc,
  // Chebyshev fit, relative error < 1.2e-7 for all z >= 0): erfc(z) = t exp(-z^2 + P(t)),
  // t = 1 / (1 + z/2). Computed for z = |x| / sqrt 2 as q = erfc(z) / 2, which is Phi(x)
  // for x <= 0 and 1 - Phi(x) for x > 0: both tails keep their relative accuracy.
  template <typename P>
  static STABLEKERNELS_HOST_DEVICE float fast(float x) {
    constexpr float kHalfInvSqrt2 = 0.35355339059327376220f;
    // P's coefficients times log2(e) (the exponent is taken in base 2); -1 in the
    // constant term halves the result.
    constexpr float c0 = -1.26551223f * kLog2e - 1.0f;
    constexpr float c1 = 1.00002368f * kLog2e;
    constexpr float c2 = 0.37409196f * kLog2e;
    constexpr float c3 = 0.09678418f * kLog2e;
    constexpr float c4 = -0.18628806f * kLog2e;
    constexpr float c5 = 0.27886807f * kLog2e;
    constexpr float c6 = -1.13520398f * kLog2e;
    constexpr float c7 = 1.48851587f * kLog2e;
    constexpr float c8 = -0.82215223f * kLog2e;
    constexpr float c9 = 0.17087277f * kLog2e;
    const float t = P::rcp(P::fma(fabsf(x), kHalfInvSqrt2, 1.0f));
    float p = P::fma(c9, t, c8);
    p = P::fma(p, t, c7);
    p = P::fma(p, t, c6);
    p = P::fma(p, t, c5);
    p = P::fma(p, t, c4);
    p = P::fma(p, t, c3);
    p = P::fma(p, t, c2);
    p = P::fma(p, t, c1);
    p = P::fma(p, t, c0);
    // -z^2 log2(e) = -x^2 log2(e) / 2
    const float q = t * P::exp2(P::fma(x * x, -0.5f * kLog2e, p));
    return x * (x > 0.0f ? 1.0f - q : q);
  }
};

// torch.nn.functional.gelu(x, approximate="tanh")
struct GeluTanh {
  static constexpr float kSqrt2OverPi = 0.79788456080286535588f;
  static constexpr float kCoeff = 0.044715f;

  static STABLEKERNELS_HOST_DEVICE float apply(float x) {
    return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + kCoeff * x * x * x)));
  }

  // 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3): the same
  // identity as silu, so no tanh and no cancellation where tanh(u) is near -1.
  template <typename P>
  static STABLEKERNELS_HOST_DEVICE float fast(float x) {
    constexpr float kC0 = -2.0f * kSqrt2OverPi * kLog2e;
    constexpr float kC1 = kC0 * kCoeff;
    return P::div(x, 1.0f + P::exp2(x * P::fma(kC1, x * x, kC0)));
  }
};

// The fast form of Act over the primitives P, as a type with apply().
template <typename Act, typename P>
struct FastAct {
  static STABLEKERNELS_HOST_DEVICE float apply(float x) { return Act::template fast<P>(x); }
};

}  // namespace stablekernels::activation
