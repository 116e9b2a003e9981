// SPDX-License-Identifier: Apache-2.0
// Schemas of the quantization family (the only place they are written; they match vLLM's).

#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY_FRAGMENT(stablekernels, m) {
  // result = saturate_fp8_e4m3fn(input / scale), scale given (one float32 element)
  m.def("static_scaled_fp8_quant(Tensor! result, Tensor input, Tensor scale) -> ()");
  // scale = max(amax(|input|) / 448, min_scale) over the tensor; result = input / scale in fp8
  m.def("dynamic_scaled_fp8_quant(Tensor! result, Tensor input, Tensor! scale) -> ()");
  // per row: scale[r] = max(min(amax(|input[r]|), scale_ub) / 448, min_scale);
  // result[r] = input[r] / scale[r] in fp8
  m.def(
      "dynamic_per_token_scaled_fp8_quant(Tensor! result, Tensor input, Tensor! scale, "
      "Tensor? scale_ub) -> ()");
}
