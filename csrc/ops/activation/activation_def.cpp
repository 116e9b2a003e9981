// SPDX-License-Identifier: Apache-2.0
// Schemas of the activation family (the only place they are written; they match vLLM's).

#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY_FRAGMENT(stablekernels, m) {
  // input [..., 2d] -> result [..., d] = silu(input[..., :d]) * input[..., d:]
  m.def("silu_and_mul(Tensor! result, Tensor input) -> ()");
  // as silu_and_mul with the exact (erf) GELU, torch.nn.functional.gelu(approximate="none")
  m.def("gelu_and_mul(Tensor! result, Tensor input) -> ()");
  // as silu_and_mul with the tanh GELU, torch.nn.functional.gelu(approximate="tanh")
  m.def("gelu_tanh_and_mul(Tensor! result, Tensor input) -> ()");
}
