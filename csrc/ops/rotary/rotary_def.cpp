// SPDX-License-Identifier: Apache-2.0
// Schemas of the rotary family (the only place they are written; they match vLLM's).

#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY_FRAGMENT(stablekernels, m) {
  // In place: rotates the first rot_dim elements of every head of query (and key) by the
  // angles of cos_sin_cache[positions[token]] (rot_dim = cos_sin_cache.size(1); NeoX halves
  // when is_neox, else interleaved GPT-J pairs)
  m.def(
      "rotary_embedding(Tensor positions, Tensor! query, Tensor!? key, int head_size, "
      "Tensor cos_sin_cache, bool is_neox) -> ()");
}
