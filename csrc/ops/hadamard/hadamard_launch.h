// SPDX-License-Identifier: Apache-2.0
#pragma once
// The hadamard family's launcher: a plain function of raw pointers, defined in the
// torch-free hadamard_cuda.cu (nvcc) and called by hadamard_cuda.cpp (the torch glue).
// Torch-free, no CUDA device code.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "stablekernels/dtype.h"
#include "stablekernels/rows.h"

namespace stablekernels::hadamard {

// What launch_hadacore_transform did; hadamard_cuda.cpp turns it into the op's errors.
struct HadamardLaunchStatus {
  // A CUDA error (cudaSuccess: none), and the call that returned it, as the op's error
  // message names it ("cudaGetLastError()" for the launch itself).
  cudaError_t err = cudaSuccess;
  const char* call = nullptr;
  // > 0: the rows need this many bytes of dynamic shared memory per block, more than
  // the device allows (`smem_optin`); nothing was launched.
  int64_t smem_bytes = 0;
  // > 0: internal error, no kernel for this many elements per thread; nothing launched.
  int missing_ept = 0;

  bool ok() const { return err == cudaSuccess && smem_bytes == 0 && missing_ept == 0; }
};

// out = in @ H_n / sqrt(n) over `rows` rows of n = 2^log_n elements of `dtype` (float32,
// float16, bfloat16); `out` may equal `in` (in place). `smem_optin`: the device's
// cudaDevAttrMaxSharedMemoryPerBlockOptin, in bytes; `sms`: its SM count (the grid of the
// kernels that loop over rows).
HadamardLaunchStatus launch_hadacore_transform(DType dtype, cudaStream_t stream, void* out,
                                               const RowIndexer& orows, const void* in,
                                               const RowIndexer& irows, int64_t rows, int log_n,
                                               int smem_optin, int sms);

}  // namespace stablekernels::hadamard
