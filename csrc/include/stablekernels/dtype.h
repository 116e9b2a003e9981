// SPDX-License-Identifier: Apache-2.0
#pragma once
// Element types as a plain tag, for the boundary between the torch-facing glue
// (<family>_cuda.cpp, which maps a torch ScalarType to a DType: core/cuda_utils.h)
// and the torch-free launch code (<family>_cuda.cu, which maps a DType to a CUDA
// element type: stablekernels/cuda_dispatch.cuh). Torch-free, CUDA-free.

#include <cstdint>

namespace stablekernels {

enum class DType : int32_t {
  kFloat32,
  kFloat16,
  kBFloat16,
  kFloat8E4m3fn,
  kFloat8E5m2,
  kInt64,
  kInt32,
  kUInt8,
};

}  // namespace stablekernels
