// SPDX-License-Identifier: Apache-2.0
// The arch guard's probe, compiled by nvcc: an empty kernel of this library, whose
// attributes the runtime gives only when the library carries SASS or usable PTX for the
// GPU. Torch-free (docs/farm.md: torch-free nvcc TUs are cheap compile-cache hits); the
// caching and the error message are in core/cuda_arch.cpp.

#include <cuda_runtime.h>

#include "stablekernels/cuda_arch.h"

namespace stablekernels {
namespace {

__global__ void arch_probe_kernel() {}

}  // namespace

cudaError_t probe_kernel_image() {
  cudaFuncAttributes attr;
  const cudaError_t err = cudaFuncGetAttributes(&attr, arch_probe_kernel);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls are not affected
  }
  return err;
}

}  // namespace stablekernels
