// SPDX-License-Identifier: Apache-2.0
// CPU implementations of the activation family.

#include <torch/csrc/stable/library.h>

#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/activation/activation.h"
#include "ops/activation/activation_math.h"

namespace stablekernels::activation {
namespace {

template <typename Act, typename T>
void act_and_mul_rows(T* out, const RowIndexer& out_rows, const T* in, const RowIndexer& in_rows,
                      int64_t d, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* x = in + in_rows.offset(r);
    const T* g = x + d;
    T* y = out + out_rows.offset(r);
    for (int64_t j = 0; j < d; ++j) {
      y[j] = static_cast<T>(Act::apply(static_cast<float>(x[j])) * static_cast<float>(g[j]));
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
