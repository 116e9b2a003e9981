// SPDX-License-Identifier: Apache-2.0
// Schemas of the sampling family (the only place they are written; they match vLLM's).

#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY_FRAGMENT(stablekernels, m) {
  // In place: where prompt_mask or output_mask is set, logits > 0 become
  // logits / repetition_penalties[row] and the others logits * repetition_penalties[row]
  m.def(
      "apply_repetition_penalties_(Tensor! logits, Tensor prompt_mask, Tensor output_mask, "
      "Tensor repetition_penalties) -> ()");
  // indices[i, :k] = the columns of the k largest logits[i, row_starts[i]:row_ends[i]]
  // (any order; -1 for the slots past the row's length)
  m.def(
      "top_k_per_row(Tensor logits, Tensor row_starts, Tensor row_ends, Tensor! indices, int k) "
      "-> ()");
}
