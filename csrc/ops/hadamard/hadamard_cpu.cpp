// SPDX-License-Identifier: Apache-2.0
// CPU implementation of the hadamard family.

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>

#include <vector>

#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/hadamard/hadamard.h"
#include "ops/hadamard/hadamard_math.h"

namespace stablekernels::hadamard {
namespace {

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
  dispatch_float_types(x.scalar_type(), op, "x", [&](auto tag) {
    using T = decltype(tag);
    T* out = static_cast<T*>(result.data_ptr());
    const T* in = static_cast<const T*>(x.data_ptr());
    const int64_t n = p.n;
    const float scale = normalization(n);
    parallel_rows(p.rows, n, [&](int64_t begin, int64_t end) {
      std::vector<float> buf(static_cast<size_t>(n));
      for (int64_t r = begin; r < end; ++r) {
        const T* src = in + in_rows.offset(r);
        T* dst = out + out_rows.offset(r);
        for (int64_t j = 0; j < n; ++j) {
          buf[j] = static_cast<float>(src[j]);
        }
        fwht_inplace(buf.data(), n);
        for (int64_t j = 0; j < n; ++j) {
          dst[j] = static_cast<T>(buf[j] * scale);
        }
      }
    });
  });
  return result;
}

}  // namespace
}  // namespace stablekernels::hadamard

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("hadacore_transform", TORCH_BOX(&stablekernels::hadamard::hadacore_transform_cpu));
}
