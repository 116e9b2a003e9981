// SPDX-License-Identifier: Apache-2.0
// CPU implementation of the hadamard family.

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>

#include <vector>

#include "core/cpu_isa.h"
#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/hadamard/hadamard.h"
#include "ops/hadamard/hadamard_math.h"

namespace stablekernels::hadamard {
namespace {

// rows [begin, end): widened into buf (n floats), transformed, scaled and rounded back, one
// loop each. Compiled for the baseline, AVX2 and AVX-512 (core/cpu_isa.h): the baseline's
// float16 conversion, element by element, took 227 us on 512 rows of 128 (eager 126).
template <Isa I, typename T>
__attribute__((always_inline)) inline void hadamard_rows_body(
    IsaTag<I> isa, T* out, const RowIndexer& out_rows, const T* in, const RowIndexer& in_rows,
    float* buf, int64_t n, int64_t begin, int64_t end) {
  const float scale = normalization(n);
  for (int64_t r = begin; r < end; ++r) {
    widen(isa, buf, in + in_rows.offset(r), n);
    fwht_inplace(buf, n);
    for (int64_t j = 0; j < n; ++j) {
      buf[j] *= scale;
    }
    narrow(isa, out + out_rows.offset(r), buf, n);
  }
}

STABLEKERNELS_ISA_BUILDS(hadamard_rows, hadamard_rows_body)

Tensor hadacore_transform_cpu(const Tensor& x, bool inplace) {
  constexpr const char* op = "hadacore_transform";
  const HadamardProblem p = check_hadacore_transform(x, inplace);
  // A new contiguous tensor unless in place; `x` is never written then.
  Tensor result = inplace ? x : torch::stable::new_empty(x, x.sizes());
  if (p.rows == 0) {
    return result;
  }
  const RowIndexer out_rows = row_indexer(op, {result, "result"});
  const RowIndexer in_rows = row_indexer(op, {x, "x"});
  const Isa isa = cpu_isa(op);
  dispatch_float_types(x.scalar_type(), op, "x", [&](auto tag) {
    using T = decltype(tag);
    T* out = static_cast<T*>(result.data_ptr());
    const T* in = static_cast<const T*>(x.data_ptr());
    parallel_rows(p.rows, p.n, [&](int64_t begin, int64_t end) {
      std::vector<float> buf(static_cast<size_t>(p.n));
      STABLEKERNELS_BY_ISA(isa, hadamard_rows, out, out_rows, in, in_rows, buf.data(), p.n, begin,
                           end);
    });
  });
  return result;
}

}  // namespace
}  // namespace stablekernels::hadamard

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("hadacore_transform", TORCH_BOX(&stablekernels::hadamard::hadacore_transform_cpu));
}
