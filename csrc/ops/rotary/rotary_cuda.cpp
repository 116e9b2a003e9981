// SPDX-License-Identifier: Apache-2.0
// CUDA op of the rotary family, torch-facing glue (host compiler): checks, tensors ->
// pointers, dtypes -> DType, stream and arch guard, registration. The launch is in the
// torch-free rotary_cuda.cu (rotary_launch.h).

#include <torch/csrc/stable/library.h>

#include <optional>

#include "core/cuda_utils.h"
#include "ops/rotary/rotary.h"
#include "ops/rotary/rotary_launch.h"

namespace stablekernels::rotary {
namespace {

void rotary_embedding_cuda(const Tensor& positions, const Tensor& query,
                           const std::optional<Tensor>& key, int64_t head_size,
                           const Tensor& cos_sin_cache, bool is_neox) {
  constexpr const char* op = "rotary_embedding";
  const RotaryShape s = check_rotary_embedding(positions, query, key, head_size, cos_sin_cache);
  if (s.num_tokens == 0 || s.query.num_heads + s.key.num_heads == 0) {
    return;
  }
  CudaLaunchContext ctx(query, op);
  const DType dtype = float_dtype(query.scalar_type(), op, "query");
  // float32, or the query's dtype (checked): anything but float32 means "the query's".
  const DType cache_dtype =
      cos_sin_cache.scalar_type() == ScalarType::Float ? DType::kFloat32 : dtype;
  check_launch(launch_rotary_embedding(dtype, cache_dtype, is_neox, ctx.stream, s,
                                       data_ptr<const int64_t>(positions), query.data_ptr(),
                                       key.has_value() ? key->data_ptr() : nullptr,
                                       cos_sin_cache.data_ptr()),
               op);
}

}  // namespace
}  // namespace stablekernels::rotary

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("rotary_embedding", TORCH_BOX(&stablekernels::rotary::rotary_embedding_cuda));
}
