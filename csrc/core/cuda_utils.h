// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA glue shared by the CUDA TUs: element type mapping, the current stream,
// error checks, the kernel-image (arch) guard.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/csrc/stable/accelerator.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>
#include <torch/headeronly/util/shim_utils.h>

#include <cstdint>
#include <initializer_list>

#include "core/checks.h"

namespace stablekernels {

// torch element type -> CUDA element type.
template <typename T>
struct cuda_type {
  using type = T;
};
template <>
struct cuda_type<torch::headeronly::Half> {
  using type = __half;
};
template <>
struct cuda_type<torch::headeronly::BFloat16> {
  using type = __nv_bfloat16;
};
template <typename T>
using cuda_type_t = typename cuda_type<T>::type;

template <typename CT>
inline CT* cuda_ptr(const Tensor& t) {
  return reinterpret_cast<CT*>(t.data_ptr());
}

// Whether every row of every operand can be accessed 16 bytes at a time: the row
// length and every row start are multiples of 16 bytes and every base pointer is
// 16-byte aligned. Otherwise kernels fall back to one element per access.
template <typename CT>
bool can_use_vec16(int64_t row_len, std::initializer_list<const void*> ptrs,
                   std::initializer_list<const RowIndexer*> row_layouts) {
  constexpr int kVec = static_cast<int>(16 / sizeof(CT));
  bool ok = row_len % kVec == 0;
  for (const void* p : ptrs) {
    ok = ok && reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
  }
  for (const RowIndexer* r : row_layouts) {
    ok = ok && r->strides_multiple_of(kVec);
  }
  return ok;
}

// torch's current CUDA stream on `device_index` (honours torch.cuda.stream(...)).
inline cudaStream_t current_stream(int32_t device_index) {
  void* stream = nullptr;
  TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device_index, &stream));
  return static_cast<cudaStream_t>(stream);
}

// Throws unless this wheel carries code the GPU `device_index` can run (SASS
// for its arch, or PTX old enough to JIT). Checked once per device.
void check_kernel_image(int32_t device_index, const char* op);

#define STABLEKERNELS_CUDA_CHECK(expr, op)                                      \
  do {                                                                          \
    const cudaError_t _sk_err = (expr);                                         \
    if (_sk_err != cudaSuccess) {                                               \
      ::stablekernels::fail(op, "CUDA error ", cudaGetErrorName(_sk_err), ": ", \
                            cudaGetErrorString(_sk_err), " (" #expr ")");       \
    }                                                                           \
  } while (0)

#define STABLEKERNELS_KERNEL_LAUNCH_CHECK(op) STABLEKERNELS_CUDA_CHECK(cudaGetLastError(), op)

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
