// SPDX-License-Identifier: Apache-2.0
#pragma once
// The arch guard's torch-free half (csrc/core/cuda_arch.cu): whether this library
// carries a kernel image the current GPU can run. The torch-facing half, which
// caches the answer per device and raises the error, is csrc/core/cuda_arch.cpp.

#include <cuda_runtime_api.h>

namespace stablekernels {

// cudaFuncGetAttributes on an empty kernel of this library, on the current device:
// cudaSuccess when it has SASS or usable PTX for it, else the error (cleared from the
// runtime's last-error state).
cudaError_t probe_kernel_image();

}  // namespace stablekernels
