// SPDX-License-Identifier: Apache-2.0
#pragma once
// The quantization family's launchers: plain functions of raw pointers, defined in the
// torch-free quantization_cuda.cu (nvcc) and called by quantization_cuda.cpp (the torch
// glue). Torch-free, no CUDA device code.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "stablekernels/dtype.h"
#include "stablekernels/rows.h"

namespace stablekernels::quantization {

// A [rows, hidden] walk for the per-tensor kernels: rows that lie back to back in both
// tensors become one row (flat_walk in quantization_cuda.cpp).
struct FlatWalk {
  int64_t rows;
  int64_t hidden;
  RowIndexer out_rows;
  RowIndexer in_rows;
};

// What the two kernels of dynamic_scaled_fp8_quant (launch_tensor_amax, then
// launch_quantize_tensor) size themselves by besides the SM count: the device's L2 size.
struct TwoPass {
  int64_t l2_bytes;
};

// out <- fp8 e4m3 bits of in / *scale (scale on the device); `in` of `dtype` (float32,
// float16, bfloat16); `sms`: the device's SM count; `two_pass`: null, or set right after
// launch_tensor_amax, whose walk ends at the end of the input: this walk then starts there
// (where L2 holds what that one read last) and, on devices with programmatic launches
// (sm_90 and newer), may start before it ends. Returns cudaGetLastError().
cudaError_t launch_quantize_tensor(DType dtype, cudaStream_t stream, const FlatWalk& w,
                                   uint8_t* out, const void* in, const float* scale, int sms,
                                   const TwoPass* two_pass);

// *scale <- max(*scale, max(amax(in) / 448, kMinScale)); the caller zeroes *scale first.
// As above.
cudaError_t launch_tensor_amax(DType dtype, cudaStream_t stream, const FlatWalk& w, float* scale,
                               const void* in, int sms, const TwoPass& two_pass);

// dynamic_scaled_fp8_quant in one kernel (no scale zeroing, no second launch): for a dense
// walk (w.rows == 1) whose pointers allow 16-byte vectors and that fits one block or, on
// devices with thread block clusters (sm_90 and newer), one cluster of blocks. Returns
// whether it launched (false: nothing done, the caller takes launch_tensor_amax +
// launch_quantize_tensor); `err` is cudaGetLastError() either way. Launched, it writes
// *scale and out, bit for bit what those two give.
bool launch_dynamic_quant_fused(DType dtype, cudaStream_t stream, const FlatWalk& w, uint8_t* out,
                                float* scale, const void* in, cudaError_t& err);

// dynamic_scaled_fp8_quant in one cooperative kernel for dense inputs of 16-byte vectors
// past what launch_dynamic_quant_fused takes, up to what the chip holds (kQuantPolicy):
// dynamic_quant_grid_takes says whether it takes the walk on the current device;
// launch_dynamic_quant_grid zeroes `sync` (dynamic_quant_grid_sync_bytes() bytes of device
// memory the call may use alone) and launches it. It writes *scale and out, bit for bit what
// launch_tensor_amax + launch_quantize_tensor give. Returns the launch's error.
int64_t dynamic_quant_grid_sync_bytes();
bool dynamic_quant_grid_takes(DType dtype, const FlatWalk& w, const void* out, const void* in,
                              int sms, int64_t l2_bytes);
cudaError_t launch_dynamic_quant_grid(DType dtype, cudaStream_t stream, const FlatWalk& w,
                                      uint8_t* out, float* scale, void* sync, const void* in,
                                      int sms, int64_t l2_bytes);

// Per-token scales and fp8 out, rows of `hidden` (<= 2^30) elements; `ub` may be null.
cudaError_t launch_per_token_quant(DType dtype, cudaStream_t stream, uint8_t* out,
                                   const RowIndexer& orows, const void* in, const RowIndexer& irows,
                                   float* scale, int64_t scale_stride, const float* ub,
                                   int64_t rows, int64_t hidden);

}  // namespace stablekernels::quantization
