// SPDX-License-Identifier: Apache-2.0
#pragma once
// The activation family's launchers: plain functions of raw pointers, defined in the
// torch-free activation_cuda.cu (nvcc) and called by activation_cuda.cpp (the torch
// glue). Torch-free, no CUDA device code.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "stablekernels/dtype.h"
#include "stablekernels/rows.h"

namespace stablekernels::activation {

enum class ActKind : int32_t { kSilu, kGelu, kGeluTanh };

// out [rows, d] = Act(in[:, :d]) * in[:, d:], rows addressed by orows / irows; `dtype`
// float32, float16 or bfloat16. Returns cudaGetLastError() after the launch.
cudaError_t launch_act_and_mul(ActKind act, DType dtype, cudaStream_t stream, void* out,
                               const RowIndexer& orows, const void* in, const RowIndexer& irows,
                               int64_t rows, int64_t d);

}  // namespace stablekernels::activation
