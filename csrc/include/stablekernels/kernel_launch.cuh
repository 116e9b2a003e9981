// SPDX-License-Identifier: Apache-2.0
#pragma once
// How the CUDA launch code (the <family>_cuda.cu files) launches every kernel: with
// programmatic dependent launch (PDL) where the device runs code built for sm_90 or newer,
// a plain launch elsewhere. Torch-free.
//
// A kernel launched with PDL may be scheduled before the kernel ahead of it in the stream has
// finished, once every block of that kernel has started and passed its own wait; it then
// waits for that kernel (griddepcontrol.wait: completed, its writes visible) before it
// touches memory. Every kernel therefore begins with cuda::pdl_enter() (cuda_common.cuh):
// the wait, then the signal that lets the next kernel be scheduled. What that buys is the
// launch latency between dependent kernels: the next kernel's blocks are resident and
// waiting when this one ends, instead of being launched then. Under a CUDA graph of 32
// back-to-back calls of `static_scaled_fp8_quant` on one token of 4096, 1.29 -> 0.81 us a
// call on an H200. A kernel that follows a kernel launched without PDL (any torch kernel)
// starts as it always did, once that one has ended; a kernel that follows ours without
// being launched with PDL waits for ours to end, as before. STABLEKERNELS_PDL=0 in the
// environment launches every kernel without PDL.

#include <cuda_runtime.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace stablekernels {

// compute(device) (a value >= 0) for the current device, asked once per device: each call
// site has a cache of its own (the type of its lambda). `fallback` where the current device
// cannot be told. A query of compute() that failed leaves no error behind.
template <typename F>
int once_per_device(F compute, int fallback) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices] = {};  // value + 1; 0: not asked yet
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) {
    cudaGetLastError();
    return fallback;
  }
  const int cached = cache[device].load(std::memory_order_relaxed);
  if (cached > 0) {
    return cached - 1;
  }
  const int value = compute(device);
  cudaGetLastError();
  cache[device].store(value + 1, std::memory_order_relaxed);
  return value;
}

// Whether the current device runs this module's kernels from code for sm_90 or newer, where
// clusters and programmatic launches exist: not so on older devices, nor where a newer one
// runs a PTX JIT of the compute_80 code (the kernel's ptxVersion tells; that code has none of
// those parts, so its kernels would not wait). `kernel`: any kernel of the module (all are
// built for the same archs). Asked once per device.
inline bool runs_sm90_code(const void* kernel) {
  return once_per_device(
             [kernel](int device) {
               int major = 0;
               cudaFuncAttributes attributes = {};
               return static_cast<int>(
                   cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) ==
                       cudaSuccess &&
                   major >= 9 && cudaFuncGetAttributes(&attributes, kernel) == cudaSuccess &&
                   attributes.ptxVersion >= 90);
             },
             0) != 0;
}

// Whether kernels are launched with PDL: yes unless STABLEKERNELS_PDL=0 in the environment
// (read once per process).
inline bool pdl_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("STABLEKERNELS_PDL");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

// Launches kernel<<<grid, block, smem, stream>>>(args...) with PDL where runs_sm90_code, and
// `extra` launch attributes (a cluster shape) if given. Its error, as that of <<<...>>>, is
// the last error (cudaGetLastError()).
template <typename... Params, typename... Args>
void launch_kernel_with(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                        cudaStream_t stream, const cudaLaunchAttribute* extra, Args&&... args) {
  cudaLaunchAttribute attrs[2];
  unsigned n = 0;
  if (extra != nullptr) {
    attrs[n++] = *extra;
  }
  if (pdl_enabled() && runs_sm90_code(reinterpret_cast<const void*>(kernel))) {
    attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attrs;
  config.numAttrs = n;
  cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t stream, Args&&... args) {
  launch_kernel_with(kernel, grid, block, smem, stream, nullptr, std::forward<Args>(args)...);
}

}  // namespace stablekernels
