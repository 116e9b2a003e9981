// SPDX-License-Identifier: Apache-2.0
// The arch guard: a CUDA op on a GPU for which this wheel has neither SASS nor
// usable PTX raises a RuntimeError naming the GPU arch and the archs built,
// instead of the driver's "no kernel image is available". The probe kernel is in
// the torch-free core/cuda_arch.cu; this is the torch-facing half (host compiler).

#include <cuda_runtime_api.h>

#include <atomic>
#include <sstream>
#include <string>

#include "core/cuda_utils.h"
#include "stablekernels/cuda_arch.h"

namespace stablekernels {
namespace {

constexpr int kMaxCachedDevices = 64;
std::atomic<bool> g_device_ok[kMaxCachedDevices];

std::string join_archs(const char* list, const char* prefix) {
  std::string out;
  std::string item;
  std::istringstream ss(list);
  while (std::getline(ss, item, ',')) {
    if (item.empty()) {
      continue;
    }
    out += (out.empty() ? "" : ", ") + std::string(prefix) + item;
  }
  return out.empty() ? "none" : out;
}

}  // namespace

void check_kernel_image(int32_t device_index, const char* op) {
  if (device_index >= 0 && device_index < kMaxCachedDevices &&
      g_device_ok[device_index].load(std::memory_order_acquire)) {
    return;
  }
  const cudaError_t err = probe_kernel_image();
  if (err == cudaSuccess) {
    if (device_index >= 0 && device_index < kMaxCachedDevices) {
      g_device_ok[device_index].store(true, std::memory_order_release);
    }
    return;
  }
  int major = 0;
  int minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_index);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device_index);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, device_index);
  const std::string built = "SASS for " + join_archs(STABLEKERNELS_SASS_ARCHS, "sm_") +
                            "; PTX for " + join_archs(STABLEKERNELS_PTX_ARCHS, "compute_");
  if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction) {
    fail(op, "this stablekernels wheel has no code for GPU ", device_index, " (", prop.name,
         ", sm_", major, minor, "): it was built with ", built,
         ". Install a wheel whose arch set covers sm_", major, minor,
         " or build one with STABLEKERNELS_CUDA_ARCHS=\"", major, minor, "\".");
  }
  if (err == cudaErrorUnsupportedPtxVersion || err == cudaErrorInsufficientDriver) {
    fail(op, "the CUDA driver cannot run this wheel's code on GPU ", device_index, " (", prop.name,
         ", sm_", major, minor, "; wheel built with ", built, "): ", cudaGetErrorString(err),
         ". Update the NVIDIA driver.");
  }
  fail(op, "CUDA error ", cudaGetErrorName(err), " while checking kernel images on GPU ",
       device_index, ": ", cudaGetErrorString(err));
}

}  // namespace stablekernels
