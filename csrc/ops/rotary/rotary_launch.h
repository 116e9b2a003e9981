// SPDX-License-Identifier: Apache-2.0
#pragma once
// The rotary family's launcher: a plain function of raw pointers, defined in the
// torch-free rotary_cuda.cu (nvcc) and called by rotary_cuda.cpp (the torch glue).
// Torch-free, no CUDA device code.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "ops/rotary/rotary_math.h"
#include "stablekernels/dtype.h"

namespace stablekernels::rotary {

// rotary_embedding over the shape `s`: query/key of `dtype` (float32, float16, bfloat16;
// key may be null), the cos/sin cache of `cache_dtype` (float32 or `dtype`), int64
// positions. Returns cudaGetLastError() after the launch.
cudaError_t launch_rotary_embedding(DType dtype, DType cache_dtype, bool is_neox,
                                    cudaStream_t stream, const RotaryShape& s,
                                    const int64_t* positions, void* query, void* key,
                                    const void* cos_sin_cache);

}  // namespace stablekernels::rotary
