// SPDX-License-Identifier: Apache-2.0
// CPU implementations of the norm family.

#include <torch/csrc/stable/library.h>

#include "core/cpu_isa.h"
#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/norm/norm.h"
#include "ops/norm/norm_cpu_kernels.h"

namespace stablekernels::norm {
namespace {

STABLEKERNELS_ISA_BUILDS(rms_norm_rows, cpu::rms_norm_rows)
STABLEKERNELS_ISA_BUILDS(fused_add_rms_norm_rows, cpu::fused_add_rms_norm_rows)

void rms_norm_cpu(const Tensor& result, const Tensor& input, const Tensor& weight, double epsilon) {
  const NormProblem p = check_rms_norm(result, input, weight, epsilon);
  if (p.rows == 0 || p.hidden == 0) {
    return;
  }
  const RowIndexer out_rows = row_indexer("rms_norm", {result, "result"});
  const RowIndexer in_rows = row_indexer("rms_norm", {input, "input"});
  const Isa isa = cpu_isa("rms_norm");
  dispatch_float_types(input.scalar_type(), "rms_norm", "input", [&](auto tag) {
    using T = decltype(tag);
    T* out = static_cast<T*>(result.data_ptr());
    const T* in = static_cast<const T*>(input.data_ptr());
    const T* w = static_cast<const T*>(weight.data_ptr());
    parallel_rows(p.rows, p.hidden, [&](int64_t b, int64_t e) {
      STABLEKERNELS_BY_ISA(isa, rms_norm_rows, out, out_rows, in, in_rows, w, p.hidden,
                           static_cast<float>(epsilon), b, e);
    });
  });
}

void fused_add_rms_norm_cpu(const Tensor& input, const Tensor& residual, const Tensor& weight,
                            double epsilon) {
  const NormProblem p = check_fused_add_rms_norm(input, residual, weight, epsilon);
  if (p.rows == 0 || p.hidden == 0) {
    return;
  }
  const RowIndexer in_rows = row_indexer("fused_add_rms_norm", {input, "input"});
  const RowIndexer res_rows = row_indexer("fused_add_rms_norm", {residual, "residual"});
  const Isa isa = cpu_isa("fused_add_rms_norm");
  dispatch_float_types(input.scalar_type(), "fused_add_rms_norm", "input", [&](auto tag) {
    using T = decltype(tag);
    T* in = static_cast<T*>(input.data_ptr());
    T* res = static_cast<T*>(residual.data_ptr());
    const T* w = static_cast<const T*>(weight.data_ptr());
    parallel_rows(p.rows, p.hidden, [&](int64_t b, int64_t e) {
      STABLEKERNELS_BY_ISA(isa, fused_add_rms_norm_rows, in, in_rows, res, res_rows, w, p.hidden,
                           static_cast<float>(epsilon), b, e);
    });
  });
}

}  // namespace
}  // namespace stablekernels::norm

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("rms_norm", TORCH_BOX(&stablekernels::norm::rms_norm_cpu));
  m.impl("fused_add_rms_norm", TORCH_BOX(&stablekernels::norm::fused_add_rms_norm_cpu));
}
