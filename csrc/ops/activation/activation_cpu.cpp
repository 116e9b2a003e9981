// SPDX-License-Identifier: Apache-2.0
// CPU implementations of the activation family.

#include <torch/csrc/stable/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/activation/activation.h"
#include "ops/activation/activation_math.h"

namespace stablekernels::activation {
namespace {

// The CPU kernels work on chunks of a row converted to float32 and apply the activation
// over the chunk in a loop the compiler vectorizes (SSE2 at least: 4 floats a step).
// libm's expf / erff / tanhf are scalar calls, which kept these kernels at about 5 ns an
// element, slower than torch's vectorized eager ops; the forms below are branch-free
// float32 arithmetic instead, within a few ulp of the exact functions (the tests' float32
// tolerance is 1e-5).
constexpr int64_t kChunk = 256;

// e^x: Cody-Waite reduction by ln 2, Cephes' degree-6 polynomial (about 1 ulp), the
// exponent built in the bits. Above 88 (e^88 = 1.65e38) gives inf, below -87 gives 0
// (e^-87 = 1.6e-38, the edge of the normal range), NaN stays NaN.
inline float exp_approx(float x) {
  const float xc = std::min(std::max(x, -87.0f), 88.0f);
  // round(xc / ln 2) by the 1.5 * 2^23 trick (exact for |t| < 2^22; no rounding call)
  const float t = xc * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  float e = p * scale;
  e = x > 88.0f ? std::numeric_limits<float>::infinity() : e;
  e = x < -87.0f ? 0.0f : e;
  return x != x ? x : e;
}

// x * sigmoid(x) = x / (1 + e^-x): e^-x = inf for x < -88 gives -0, the limit.
struct SiluCpu {
  static float apply(float x) { return x / (1.0f + exp_approx(-x)); }
};

// 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2 / pi) (x + 0.044715 x^3): no tanh,
// and no cancellation in 1 + tanh(u) for negative u.
struct GeluTanhCpu {
  static float apply(float x) {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f;
    const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
    return x / (1.0f + exp_approx(-2.0f * u));
  }
};

// x * Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2 from the Chebyshev fit of erfc in Numerical
// Recipes (relative error under 1.2e-7 for every argument): Phi(x) = y / 2 for x < 0 and
// 1 - y / 2 otherwise, y = erfc(|x| / sqrt 2), so both tails keep their relative accuracy.
struct GeluCpu {
  static float apply(float x) {
    constexpr float kInvSqrt2 = 0.70710678118654752440f;
    const float z = std::abs(x) * kInvSqrt2;
    const float t = 1.0f / (1.0f + 0.5f * z);
    float q = 0.17087277f;
    q = q * t - 0.82215223f;
    q = q * t + 1.48851587f;
    q = q * t - 1.13520398f;
    q = q * t + 0.27886807f;
    q = q * t - 0.18628806f;
    q = q * t + 0.09678418f;
    q = q * t + 0.37409196f;
    q = q * t + 1.00002368f;
    q = q * t - 1.26551223f;
    const float y = t * exp_approx(q - z * z);
    const float phi = x < 0.0f ? 0.5f * y : 1.0f - 0.5f * y;
    return x * phi;
  }
};

template <typename Act>
struct CpuForm;
template <>
struct CpuForm<Silu> {
  using type = SiluCpu;
};
template <>
struct CpuForm<Gelu> {
  using type = GeluCpu;
};
template <>
struct CpuForm<GeluTanh> {
  using type = GeluTanhCpu;
};

template <typename Act, typename T>
void act_and_mul_rows(T* out, const RowIndexer& out_rows, const T* in, const RowIndexer& in_rows,
                      int64_t d, int64_t row_begin, int64_t row_end) {
  using A = typename CpuForm<Act>::type;
  float a[kChunk];
  float b[kChunk];
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* x = in + in_rows.offset(r);
    const T* g = x + d;
    T* y = out + out_rows.offset(r);
    for (int64_t j0 = 0; j0 < d; j0 += kChunk) {
      const int64_t n = std::min(kChunk, d - j0);
      for (int64_t i = 0; i < n; ++i) {
        a[i] = static_cast<float>(x[j0 + i]);
        b[i] = static_cast<float>(g[j0 + i]);
      }
      for (int64_t i = 0; i < n; ++i) {
        a[i] = A::apply(a[i]) * b[i];
      }
      for (int64_t i = 0; i < n; ++i) {
        y[j0 + i] = static_cast<T>(a[i]);
      }
    }
  }
}

template <typename Act>
void act_and_mul_cpu(const char* op, const Tensor& result, const Tensor& input) {
  const ActProblem p = check_act_and_mul(op, result, input);
  if (p.rows == 0 || p.d == 0) {
    return;
  }
  const RowIndexer out_rows = row_indexer(op, {result, "result"});
  const RowIndexer in_rows = row_indexer(op, {input, "input"});
  dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
    using T = decltype(tag);
    T* out = static_cast<T*>(result.data_ptr());
    const T* in = static_cast<const T*>(input.data_ptr());
    parallel_rows(p.rows, 2 * p.d, [&](int64_t b, int64_t e) {
      act_and_mul_rows<Act>(out, out_rows, in, in_rows, p.d, b, e);
    });
  });
}

void silu_and_mul_cpu(const Tensor& result, const Tensor& input) {
  act_and_mul_cpu<Silu>("silu_and_mul", result, input);
}
void gelu_and_mul_cpu(const Tensor& result, const Tensor& input) {
  act_and_mul_cpu<Gelu>("gelu_and_mul", result, input);
}
void gelu_tanh_and_mul_cpu(const Tensor& result, const Tensor& input) {
  act_and_mul_cpu<GeluTanh>("gelu_tanh_and_mul", result, input);
}

}  // namespace
}  // namespace stablekernels::activation

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("silu_and_mul", TORCH_BOX(&stablekernels::activation::silu_and_mul_cpu));
  m.impl("gelu_and_mul", TORCH_BOX(&stablekernels::activation::gelu_and_mul_cpu));
  m.impl("gelu_tanh_and_mul", TORCH_BOX(&stablekernels::activation::gelu_tanh_and_mul_cpu));
}
