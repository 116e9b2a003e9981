// SPDX-License-Identifier: Apache-2.0
// CPU implementation of the quantization family.

#include <torch/csrc/stable/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>

#include "core/cpu_isa.h"
#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/quantization/quantization.h"
#include "ops/quantization/quantization_math.h"

namespace stablekernels::quantization {
namespace {

// The row loops below are branch-free (fp8_e4m3_bits, finite_abs, max) and vectorize; each
// is compiled for the baseline, AVX2 and AVX-512 (core/cpu_isa.h) through the always-inlined
// bodies, and the CPU's best build runs. Scalar, with the conversion's branches and libm's
// fminf calls, they ran 2-5x slower than the eager ops (whose fp8 conversion is vectorized).

// max over the row of |x| for finite x (finite_abs), as the bits of the floats: the bits of
// non-negative floats order as the floats do, and an int32 max is a reduction the compiler
// vectorizes (a float one it keeps in order: max is exact, but it does not reassociate it).
template <Isa I, typename T>
__attribute__((always_inline)) inline float row_amax_body(IsaTag<I>, const T* x, int64_t n) {
  int32_t m = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float v = static_cast<float>(x[j]);
    int32_t b = 0;
    std::memcpy(&b, &v, sizeof(b));
    b &= 0x7FFFFFFF;
    const int32_t f = b < 0x7F800000 ? b : 0;  // inf and NaN count as 0
    m = m > f ? m : f;
  }
  const int32_t bits = m;
  float r = 0.0f;
  std::memcpy(&r, &bits, sizeof(r));
  return r;
}

// y <- fp8 bits of x / scale (IEEE division).
template <Isa I, typename T>
__attribute__((always_inline)) inline void quantize_row_body(IsaTag<I>, uint8_t* y, const T* x,
                                                             int64_t n, float scale) {
  for (int64_t j = 0; j < n; ++j) {
    y[j] = fp8_e4m3_bits(static_cast<float>(x[j]) / scale);
  }
}

STABLEKERNELS_ISA_BUILDS(row_amax, row_amax_body)
STABLEKERNELS_ISA_BUILDS(quantize_row, quantize_row_body)

float read_scalar(const Tensor& t) {
  float v = 0.0f;
  std::memcpy(&v, t.data_ptr(), sizeof(float));
  return v;
}

// result rows <- input rows / scale.
void quantize_rows(const char* op, const Tensor& result, const Tensor& input, QuantProblem p,
                   float scale) {
  const RowIndexer orows = row_indexer(op, {result, "result"});
  const RowIndexer irows = row_indexer(op, {input, "input"});
  auto* out = static_cast<uint8_t*>(result.data_ptr());
  const Isa isa = cpu_isa(op);
  dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
    using T = decltype(tag);
    const T* in = static_cast<const T*>(input.data_ptr());
    parallel_rows(p.rows, p.hidden, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        STABLEKERNELS_BY_ISA(isa, quantize_row, out + orows.offset(r), in + irows.offset(r),
                             p.hidden, scale);
      }
    });
  });
}

void static_scaled_fp8_quant_cpu(const Tensor& result, const Tensor& input, const Tensor& scale) {
  constexpr const char* op = "static_scaled_fp8_quant";
  const QuantProblem p = check_static_scaled_fp8_quant(result, input, scale);
  if (p.rows == 0 || p.hidden == 0) {
    return;
  }
  quantize_rows(op, result, input, p, read_scalar(scale));
}

void dynamic_scaled_fp8_quant_cpu(const Tensor& result, const Tensor& input, const Tensor& scale) {
  constexpr const char* op = "dynamic_scaled_fp8_quant";
  const QuantProblem p = check_dynamic_scaled_fp8_quant(result, input, scale);
  float amax = 0.0f;
  if (p.rows > 0 && p.hidden > 0) {
    const RowIndexer irows = row_indexer(op, {input, "input"});
    const Isa isa = cpu_isa(op);
    std::mutex mu;
    dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
      using T = decltype(tag);
      const T* in = static_cast<const T*>(input.data_ptr());
      parallel_rows(p.rows, p.hidden, [&](int64_t b, int64_t e) {
        float m = 0.0f;
        for (int64_t r = b; r < e; ++r) {
          m = std::max(m, STABLEKERNELS_BY_ISA(isa, row_amax, in + irows.offset(r), p.hidden));
        }
        const std::lock_guard<std::mutex> lock(mu);
        amax = std::max(amax, m);
      });
    });
  }
  const float s = scale_from_amax(amax);
  std::memcpy(scale.data_ptr(), &s, sizeof(float));
  if (p.rows == 0 || p.hidden == 0) {
    return;
  }
  quantize_rows(op, result, input, p, s);
}

void dynamic_per_token_scaled_fp8_quant_cpu(const Tensor& result, const Tensor& input,
                                            const Tensor& scale,
                                            const std::optional<Tensor>& scale_ub) {
  constexpr const char* op = "dynamic_per_token_scaled_fp8_quant";
  int64_t scale_stride = 0;
  const QuantProblem p =
      check_dynamic_per_token_scaled_fp8_quant(result, input, scale, scale_ub, scale_stride);
  if (p.rows == 0) {
    return;
  }
  // fminf ignores a NaN bound; without a bound the row amax is used as is.
  const float ub = scale_ub.has_value() ? read_scalar(*scale_ub) : NAN;
  const RowIndexer orows = row_indexer(op, {result, "result"});
  const RowIndexer irows = row_indexer(op, {input, "input"});
  auto* out = static_cast<uint8_t*>(result.data_ptr());
  auto* scales = static_cast<float*>(scale.data_ptr());
  const Isa isa = cpu_isa(op);
  dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
    using T = decltype(tag);
    const T* in = static_cast<const T*>(input.data_ptr());
    parallel_rows(p.rows, 2 * p.hidden, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* x = in + irows.offset(r);
        const float s =
            scale_from_amax(std::fmin(STABLEKERNELS_BY_ISA(isa, row_amax, x, p.hidden), ub));
        scales[r * scale_stride] = s;
        STABLEKERNELS_BY_ISA(isa, quantize_row, out + orows.offset(r), x, p.hidden, s);
      }
    });
  });
}

}  // namespace
}  // namespace stablekernels::quantization

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("static_scaled_fp8_quant",
         TORCH_BOX(&stablekernels::quantization::static_scaled_fp8_quant_cpu));
  m.impl("dynamic_scaled_fp8_quant",
         TORCH_BOX(&stablekernels::quantization::dynamic_scaled_fp8_quant_cpu));
  m.impl("dynamic_per_token_scaled_fp8_quant",
         TORCH_BOX(&stablekernels::quantization::dynamic_per_token_scaled_fp8_quant_cpu));
}
