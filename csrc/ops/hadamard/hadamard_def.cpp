// SPDX-License-Identifier: Apache-2.0
// Schemas of the hadamard family (the only place they are written; they match vLLM's).

#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY_FRAGMENT(stablekernels, m) {
  // result = x @ H_n / sqrt(n) over the last dim (Sylvester order, n a power of two <= 32768);
  // inplace: written into x and x returned, else a new tensor and x left unchanged.
  m.def("hadacore_transform(Tensor! x, bool inplace) -> Tensor");
}
