// SPDX-License-Identifier: Apache-2.0
// Schemas of the attention family (the only place they are written; they match vLLM's).

#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY_FRAGMENT(stablekernels, m) {
  // output = the softmax-weighted merge of two partial attention results over disjoint key
  // sets, weighted by their log-sum-exps; output_lse = log(exp(prefix_lse) + exp(suffix_lse))
  m.def(
      "merge_attn_states(Tensor! output, Tensor!? output_lse, Tensor prefix_output, "
      "Tensor prefix_lse, Tensor suffix_output, Tensor suffix_lse) -> ()");
}
