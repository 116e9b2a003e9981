// SPDX-License-Identifier: Apache-2.0
// CUDA op of the hadamard family, torch-facing glue (host compiler): checks, the output
// tensor, tensors -> pointers and row layouts, dtype -> DType, the device's shared-memory
// limit, stream and arch guard, registration. The launches are in the torch-free
// hadamard_cuda.cu (hadamard_launch.h).

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>

#include <cstdint>

#include "core/cuda_utils.h"
#include "ops/hadamard/hadamard.h"
#include "ops/hadamard/hadamard_launch.h"

namespace stablekernels::hadamard {
namespace {

constexpr const char* kOp = "hadacore_transform";

// Raises the op's error for a launch that did not go through.
void check_status(const HadamardLaunchStatus& s, const Tensor& x, int64_t n, int device,
                  int optin) {
  if (s.smem_bytes > 0) {
    fail(kOp, "rows of n = ", n, " (", dtype_name(x.scalar_type()), ") need ", s.smem_bytes / 1024,
         " KiB of shared memory per block; GPU ", device, " allows at most ", optin / 1024, " KiB");
  }
  if (s.missing_ept > 0) {
    fail(kOp, "internal error: no kernel for ", s.missing_ept, " elements per thread");
  }
  if (s.err != cudaSuccess) {
    fail(kOp, "CUDA error ", cudaGetErrorName(s.err), ": ", cudaGetErrorString(s.err), " (",
         s.call != nullptr ? s.call : "cudaGetLastError()", ")");
  }
}

Tensor hadacore_transform_cuda(const Tensor& x, bool inplace) {
  const HadamardProblem p = check_hadacore_transform(x, inplace);
  Tensor result = inplace ? x : torch::stable::new_empty(x, x.sizes());
  if (p.rows == 0) {
    return result;
  }
  CudaLaunchContext ctx(x, kOp);
  const RowIndexer orows = row_indexer(kOp, {result, "result"});
  const RowIndexer irows = row_indexer(kOp, {x, "x"});
  const DType dtype = float_dtype(x.scalar_type(), kOp, "x");
  const int device = x.get_device_index();
  int optin = 0;
  STABLEKERNELS_CUDA_CHECK(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), kOp);
  const int sms = sm_count(device, kOp);
  check_status(launch_hadacore_transform(dtype, ctx.stream, result.data_ptr(), orows, x.data_ptr(),
                                         irows, p.rows, p.log_n, optin, sms),
               x, p.n, device, optin);
  return result;
}

}  // namespace
}  // namespace stablekernels::hadamard

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("hadacore_transform", TORCH_BOX(&stablekernels::hadamard::hadacore_transform_cuda));
}
