// SPDX-License-Identifier: Apache-2.0
#pragma once
// The sampling family's launchers: plain functions of raw pointers, defined in the
// torch-free sampling_cuda.cu (nvcc) and called by sampling_cuda.cpp (the torch glue).
// Torch-free, no CUDA device code.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/sampling/sampling_math.h"
#include "stablekernels/dtype.h"

namespace stablekernels::sampling {

// apply_repetition_penalties_ over the walk `p`: logits of `dtype` (float32, float16,
// bfloat16), the bool masks as bytes, penalties float32 when p.float_penalties, else of
// `dtype`; `sms`: the device's SM count. Returns cudaGetLastError() after the launch.
cudaError_t launch_apply_repetition_penalties(DType dtype, cudaStream_t stream,
                                              const PenaltyProblem& p, int sms, void* logits,
                                              const uint8_t* prompt, const uint8_t* output,
                                              const void* penalties);

// top_k_per_row over the walk `p`: float32 logits, int32 row bounds and indices; `sms`:
// the device's SM count. Returns cudaGetLastError() after the launch.
cudaError_t launch_top_k_per_row(cudaStream_t stream, const TopKProblem& p, int sms,
                                 const float* logits, const int32_t* starts, const int32_t* ends,
                                 int32_t* indices);

}  // namespace stablekernels::sampling
