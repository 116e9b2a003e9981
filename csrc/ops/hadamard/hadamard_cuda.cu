// SPDX-License-Identifier: Apache-2.0
// CUDA implementation of the hadamard family: checks, launch policy, registration.

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>

#include <algorithm>
#include <cstdint>

#include "core/cuda_utils.h"
#include "core/dispatch.h"
#include "ops/hadamard/hadamard.h"
#include "ops/hadamard/hadamard_kernels.cuh"
#include "ops/hadamard/hadamard_tuning.h"

namespace stablekernels::hadamard {
namespace {

constexpr const char* kOp = "hadacore_transform";

// Whether every row of `ptr` (rows from `layout`) starts on a `vec`-element boundary that
// is `vec * elem_size` bytes aligned.
bool vector_ok(const void* ptr, const RowIndexer& layout, int vec, int elem_size) {
  return reinterpret_cast<std::uintptr_t>(ptr) % static_cast<std::uintptr_t>(vec * elem_size) ==
             0 &&
         layout.strides_multiple_of(vec);
}

// Allows `bytes` of dynamic shared memory for `kernel` on the current device, or throws
// when the device offers less per block.
template <typename Kernel>
void allow_shared_memory(Kernel kernel, int64_t bytes, int64_t n, const char* dtype) {
  constexpr int64_t kDefaultLimit = 48 * 1024;
  if (bytes <= kDefaultLimit) {
    return;
  }
  int device = 0;
  STABLEKERNELS_CUDA_CHECK(cudaGetDevice(&device), kOp);
  int optin = 0;
  STABLEKERNELS_CUDA_CHECK(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), kOp);
  STABLEKERNELS_CHECK(bytes <= optin, kOp, "rows of n = ", n, " (", dtype, ") need ", bytes / 1024,
                      " KiB of shared memory per block; GPU ", device, " allows at most ",
                      optin / 1024, " KiB");
  STABLEKERNELS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                static_cast<int>(bytes)),
                           kOp);
}

template <typename CT, int EPT>
void launch_fast(cudaStream_t stream, CT* out, const RowIndexer& orows, const CT* in,
                 const RowIndexer& irows, int64_t rows, int log_n, float scale, const char* dtype) {
  const HadamardConfig c = hadamard_config(log_n);
  const int log_tpr = cuda::ilog2(c.tpr);
  const int threads = std::max(c.tpr, kHadamardPolicy.min_block_threads);
  const int rows_per_block = threads / c.tpr;
  const int64_t n = int64_t{1} << log_n;
  const int64_t smem = c.tpr > 32 ? rows_per_block * n * static_cast<int64_t>(sizeof(float)) : 0;
  auto kernel = &cuda::hadamard_kernel<CT, EPT>;
  allow_shared_memory(kernel, smem, n, dtype);
  const int64_t blocks =
      std::min<int64_t>((rows + rows_per_block - 1) / rows_per_block, kHadamardPolicy.max_blocks);
  kernel<<<static_cast<unsigned>(blocks), threads, static_cast<size_t>(smem), stream>>>(
      out, orows, in, irows, rows, log_n, log_tpr, scale);
}

template <typename CT>
void launch(cudaStream_t stream, CT* out, const RowIndexer& orows, const CT* in,
            const RowIndexer& irows, int64_t rows, int log_n, const char* dtype) {
  const int64_t n = int64_t{1} << log_n;
  const float scale = normalization(n);
  const HadamardConfig c = hadamard_config(log_n);
  const int vec = std::min<int>(c.ept, stablekernels::cuda::kVec16<CT>);
  const int size = static_cast<int>(sizeof(CT));
  if (vector_ok(out, orows, vec, size) && vector_ok(in, irows, vec, size)) {
    switch (c.ept) {
      case 1: return launch_fast<CT, 1>(stream, out, orows, in, irows, rows, log_n, scale, dtype);
      case 2: return launch_fast<CT, 2>(stream, out, orows, in, irows, rows, log_n, scale, dtype);
      case 4: return launch_fast<CT, 4>(stream, out, orows, in, irows, rows, log_n, scale, dtype);
      case 8: return launch_fast<CT, 8>(stream, out, orows, in, irows, rows, log_n, scale, dtype);
      case 16: return launch_fast<CT, 16>(stream, out, orows, in, irows, rows, log_n, scale, dtype);
      case 32: return launch_fast<CT, 32>(stream, out, orows, in, irows, rows, log_n, scale, dtype);
      default: fail(kOp, "internal error: no kernel for ", c.ept, " elements per thread");
    }
  }
  const int64_t smem = n * static_cast<int64_t>(sizeof(float));
  auto kernel = &cuda::hadamard_generic_kernel<CT>;
  allow_shared_memory(kernel, smem, n, dtype);
  const int threads =
      static_cast<int>(std::clamp<int64_t>(n / 2, 32, kHadamardPolicy.generic_threads));
  const int64_t blocks = std::min<int64_t>(rows, kHadamardPolicy.max_blocks);
  kernel<<<static_cast<unsigned>(blocks), threads, static_cast<size_t>(smem), stream>>>(
      out, orows, in, irows, rows, log_n, scale);
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
  const std::string dtype = dtype_name(x.scalar_type());
  dispatch_float_types(x.scalar_type(), kOp, "x", [&](auto tag) {
    using CT = cuda_type_t<decltype(tag)>;
    launch<CT>(ctx.stream, cuda_ptr<CT>(result), orows, cuda_ptr<CT>(x), irows, p.rows, p.log_n,
               dtype.c_str());
  });
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(kOp);
  return result;
}

}  // namespace
}  // namespace stablekernels::hadamard

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("hadacore_transform", TORCH_BOX(&stablekernels::hadamard::hadacore_transform_cuda));
}
