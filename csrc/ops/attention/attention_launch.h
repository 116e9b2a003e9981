// SPDX-License-Identifier: Apache-2.0
#pragma once
// The attention family's launcher: a plain function of raw pointers, defined in the
// torch-free attention_cuda.cu (nvcc) and called by attention_cuda.cpp (the torch
// glue). Torch-free, no CUDA device code.

#include <cuda_runtime_api.h>

#include "ops/attention/attention_math.h"
#include "stablekernels/dtype.h"

namespace stablekernels::attention {

// merge_attn_states over the shape `s`: out/prefix/suffix of `dtype` (float32, float16,
// bfloat16), the lse tensors float32 (out_lse may be null). Returns cudaGetLastError()
// after the launch.
cudaError_t launch_merge_attn_states(DType dtype, cudaStream_t stream, const MergeShape& s,
                                     void* out, float* out_lse, const void* prefix,
                                     const float* prefix_lse, const void* suffix,
                                     const float* suffix_lse);

}  // namespace stablekernels::attention
