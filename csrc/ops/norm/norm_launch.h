// SPDX-License-Identifier: Apache-2.0
#pragma once
// The norm family's launchers: plain functions of raw pointers, defined in the
// torch-free norm_cuda.cu (nvcc) and called by norm_cuda.cpp (the torch glue).
// Torch-free, no CUDA device code.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "stablekernels/dtype.h"
#include "stablekernels/rows.h"

namespace stablekernels::norm {

// out = rms_norm(in) * w over rows of `hidden` (<= 2^30) elements of `dtype` (float32,
// float16, bfloat16); `sms`: the device's SM count (the persistent kernel's grid);
// `mem_gbps_per_sm`: its memory's peak per SM (memory_gbps_per_sm; 0 if unknown). Returns
// cudaGetLastError() after the launch.
cudaError_t launch_rms_norm(DType dtype, cudaStream_t stream, void* out, const RowIndexer& orows,
                            const void* in, const RowIndexer& irows, const void* weight,
                            int64_t rows, int64_t hidden, float eps, int sms,
                            double mem_gbps_per_sm);

// residual += in; in = rms_norm(residual) * w, in place. As launch_rms_norm.
cudaError_t launch_fused_add_rms_norm(DType dtype, cudaStream_t stream, void* in,
                                      const RowIndexer& irows, void* residual,
                                      const RowIndexer& rrows, const void* weight, int64_t rows,
                                      int64_t hidden, float eps);

}  // namespace stablekernels::norm
