// SPDX-License-Identifier: Apache-2.0
// Schemas of the norm family (the only place they are written; they match vLLM's).

#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY_FRAGMENT(stablekernels, m) {
  // result = input * rsqrt(mean(input^2, -1) + epsilon) * weight
  m.def("rms_norm(Tensor! result, Tensor input, Tensor weight, float epsilon) -> ()");
  // residual <- input + residual; input <- rms_norm(residual) * weight
  m.def("fused_add_rms_norm(Tensor! input, Tensor! residual, Tensor weight, float epsilon) -> ()");
}
