// SPDX-License-Identifier: Apache-2.0
#pragma once
// DType -> CUDA element type, for the launch code of the <family>_cuda.cu files.
// Torch-free: nvcc translation units include only torch-free headers, so a compile
// cache hit on them is cheap (docs/farm.md).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "stablekernels/dtype.h"

namespace stablekernels::cuda {

// A value standing for the type T: `using CT = typename decltype(tag)::type;`.
template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<CT>{}) with CT the CUDA element type of the float DType `t`
// (float, __half, __nv_bfloat16), then returns cudaGetLastError(): the error of
// the launches f made, if any. Any other DType (the glue checked it already):
// cudaErrorInvalidValue, nothing called.
template <typename F>
cudaError_t dispatch_float(DType t, F&& f) {
  switch (t) {
    case DType::kFloat32: f(TypeTag<float>{}); break;
    case DType::kFloat16: f(TypeTag<__half>{}); break;
    case DType::kBFloat16: f(TypeTag<__nv_bfloat16>{}); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace stablekernels::cuda
