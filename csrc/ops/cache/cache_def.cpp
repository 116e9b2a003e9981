// SPDX-License-Identifier: Apache-2.0
// Schemas of the cache family (the only place they are written; they match vLLM's).

#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY_FRAGMENT(stablekernels, m) {
  // key_cache[s / block_size, s % block_size] = key[t] (and value likewise) for the slot
  // s = slot_mapping[t] of each token t with s >= 0; with an fp8 kv_cache_dtype the caches
  // hold fp8 e4m3 values of key / k_scale and value / v_scale
  m.def(
      "reshape_and_cache_flash(Tensor key, Tensor value, Tensor! key_cache, "
      "Tensor! value_cache, Tensor slot_mapping, str kv_cache_dtype, Tensor k_scale, "
      "Tensor v_scale) -> ()");
  // dst[block_mapping[i, 1]] = src[block_mapping[i, 0]] for each row i, across CPU and CUDA
  m.def("swap_blocks(Tensor src, Tensor! dst, Tensor block_mapping) -> ()");
  // for every layer l: key_caches[l][m[i, 1]] = key_caches[l][m[i, 0]], same for value_caches
  m.def(
      "copy_blocks(Tensor(a!)[] key_caches, Tensor(b!)[] value_caches, Tensor block_mapping) "
      "-> ()");
}
