// SPDX-License-Identifier: Apache-2.0
#pragma once
// Torch-facing CUDA glue of the <family>_cuda.cpp files (compiled by the host C++
// compiler, never by nvcc): torch dtype -> DType tag, the current stream, CUDA
// error checks, the kernel-image (arch) guard. The launch code itself lives in the
// torch-free <family>_cuda.cu files, behind the plain functions of <family>_launch.h.

#include <cuda_runtime_api.h>

#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/csrc/stable/accelerator.h>
#include <torch/headeronly/util/shim_utils.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "core/checks.h"
#include "stablekernels/dtype.h"

namespace stablekernels {

// The DType tag of a float32/float16/bfloat16 tensor, for the launchers; other dtypes
// fail with the message of dispatch_float_types (core/dispatch.h).
inline DType float_dtype(ScalarType t, const char* op, const char* arg) {
  switch (t) {
    case ScalarType::Float: return DType::kFloat32;
    case ScalarType::Half: return DType::kFloat16;
    case ScalarType::BFloat16: return DType::kBFloat16;
    default:
      fail(op, "'", arg, "' must have dtype float32, float16 or bfloat16, got ", dtype_name(t));
  }
}

// The DType tag of any dtype DType names; others fail naming the argument.
inline DType dtype_tag(ScalarType t, const char* op, const char* arg) {
  switch (t) {
    case ScalarType::Float: return DType::kFloat32;
    case ScalarType::Half: return DType::kFloat16;
    case ScalarType::BFloat16: return DType::kBFloat16;
    case ScalarType::Float8_e4m3fn: return DType::kFloat8E4m3fn;
    case ScalarType::Float8_e5m2: return DType::kFloat8E5m2;
    case ScalarType::Long: return DType::kInt64;
    case ScalarType::Int: return DType::kInt32;
    case ScalarType::Byte: return DType::kUInt8;
    default: fail(op, "'", arg, "' has a dtype the CUDA kernels do not take: ", dtype_name(t));
  }
}

// torch's current CUDA stream on `device_index` (honours torch.cuda.stream(...)).
inline cudaStream_t current_stream(int32_t device_index) {
  void* stream = nullptr;
  TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device_index, &stream));
  return static_cast<cudaStream_t>(stream);
}

// Throws unless this wheel carries code the GPU `device_index` can run (SASS
// for its arch, or PTX old enough to JIT). Checked once per device (core/cuda_arch.cpp).
void check_kernel_image(int32_t device_index, const char* op);

#define STABLEKERNELS_CUDA_CHECK(expr, op)                                      \
  do {                                                                          \
    const cudaError_t _sk_err = (expr);                                         \
    if (_sk_err != cudaSuccess) {                                               \
      ::stablekernels::fail(op, "CUDA error ", cudaGetErrorName(_sk_err), ": ", \
                            cudaGetErrorString(_sk_err), " (" #expr ")");       \
    }                                                                           \
  } while (0)

// The error a launcher of a <family>_cuda.cu returned (its cudaGetLastError() after
// the launches), raised with the message the launch check always had.
inline void check_launch(cudaError_t err, const char* op) {
  if (err != cudaSuccess) {
    fail(op, "CUDA error ", cudaGetErrorName(err), ": ", cudaGetErrorString(err),
         " (cudaGetLastError())");
  }
}

#define STABLEKERNELS_KERNEL_LAUNCH_CHECK(op) STABLEKERNELS_CUDA_CHECK(cudaGetLastError(), op)

// Rows of at most 2^30 elements: the CUDA kernels index within a row with int.
inline void check_cuda_row_length(const char* op, int64_t row_len) {
  STABLEKERNELS_CHECK(row_len <= (int64_t{1} << 30), op, "the last dimension (", row_len,
                      ") is larger than the CUDA kernels support (2^30)");
}

// The number of SMs of a device (at least 1), for launch policies sized by the GPU.
inline int sm_count(int32_t device, const char* op) {
  int sms = 0;
  STABLEKERNELS_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                           op);
  return std::max(sms, 1);
}

// The size of a device's L2 cache in bytes, for kernels that keep part of their input there.
inline int64_t l2_cache_bytes(int32_t device, const char* op) {
  int bytes = 0;
  STABLEKERNELS_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrL2CacheSize, device), op);
  return std::max(bytes, 0);
}

// The peak rate of a device's memory (2 x its clock x its bus width) per SM, in GB/s, for
// launch policies sized by how many bytes an SM must keep in flight; 0 where the device does
// not report its memory clock or bus width (a hint, never an error: a failed query is
// cleared, so that the launch check after it does not take it for the launch's). Asked once
// per device: the driver takes hundreds of microseconds to answer cudaDevAttrMemoryClockRate
// (an H100, CUDA 13: rms_norm calls went from 89 us to 600-700 us when each asked it).
inline double memory_gbps_per_sm(int32_t device, const char* op) {
  constexpr int kCachedDevices = 64;
  static std::atomic<double> cached[kCachedDevices];  // 0: not asked yet; -1: not reported
  const bool cacheable = device >= 0 && device < kCachedDevices;
  if (cacheable) {
    const double known = cached[device].load(std::memory_order_relaxed);
    if (known != 0) {
      return std::max(known, 0.0);
    }
  }
  int clock_khz = 0;
  int bus_bits = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device) != cudaSuccess) {
    (void)cudaGetLastError();
    clock_khz = 0;
  }
  const double gbps = 2.0 * clock_khz * 1e3 * bus_bits / 8 / 1e9 / sm_count(device, op);
  if (cacheable) {
    cached[device].store(gbps > 0 ? gbps : -1.0, std::memory_order_relaxed);
  }
  return std::max(gbps, 0.0);
}

template <typename T>
inline T* data_ptr(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

// Everything a CUDA op does before launching: device guard, arch guard, stream.
struct CudaLaunchContext {
  torch::stable::accelerator::DeviceGuard guard;
  cudaStream_t stream;
  CudaLaunchContext(const Tensor& t, const char* op)
      : guard(t.get_device_index()), stream(nullptr) {
    STABLEKERNELS_CHECK(t.is_cuda(), op, "expected CUDA tensors, got one on ", device_str(t));
    check_kernel_image(t.get_device_index(), op);
    stream = current_stream(t.get_device_index());
  }
};

}  // namespace stablekernels
