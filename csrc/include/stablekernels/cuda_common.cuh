// SPDX-License-Identifier: Apache-2.0
#pragma once
// Device helpers shared by the CUDA kernels: float conversion of the element
// types, aligned vectors for 16-byte memory access, block reductions. Torch-free.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace stablekernels::cuda {

__device__ __forceinline__ float to_float(float x) {
  return x;
}
__device__ __forceinline__ float to_float(__half x) {
  return __half2float(x);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// VEC elements of T loaded or stored as one access (16 bytes when VEC * sizeof(T) == 16).
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};

template <typename T, int VEC>
__device__ __forceinline__ Vec<T, VEC> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T, VEC>*>(p);
}

template <typename T, int VEC>
__device__ __forceinline__ void store_vec(T* p, const Vec<T, VEC>& v) {
  *reinterpret_cast<Vec<T, VEC>*>(p) = v;
}

// Elements per 16-byte access.
template <typename T>
constexpr int kVec16 = static_cast<int>(16 / sizeof(T));

inline bool is_aligned(const void* p, int bytes) {
  return reinterpret_cast<std::uintptr_t>(p) % static_cast<std::uintptr_t>(bytes) == 0;
}

// Block reductions: Op::apply is the binary operation, Op::identity its neutral value.
struct SumOp {
  static __device__ __forceinline__ float apply(float a, float b) { return a + b; }
  static constexpr float identity = 0.0f;
};

// fmaxf: NaN loses to any number.
struct MaxOp {
  static __device__ __forceinline__ float apply(float a, float b) { return fmaxf(a, b); }
  static constexpr float identity = -INFINITY;
};

template <typename Op>
__device__ __forceinline__ float warp_reduce(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = Op::apply(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// Reduction over the block; every thread gets the result. blockDim.x must be a
// multiple of 32.
template <typename Op>
__device__ __forceinline__ float block_reduce(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  v = warp_reduce<Op>(v);
  if (blockDim.x <= 32) {
    return v;
  }
  __syncthreads();  // `partial` may still be read by a previous call
  if (lane == 0) {
    partial[warp] = v;
  }
  __syncthreads();
  const int nwarps = blockDim.x / 32;
  v = lane < nwarps ? partial[lane] : Op::identity;
  return warp_reduce<Op>(v);
}

__device__ __forceinline__ float warp_sum(float v) {
  return warp_reduce<SumOp>(v);
}
__device__ __forceinline__ float block_sum(float v) {
  return block_reduce<SumOp>(v);
}
__device__ __forceinline__ float warp_max(float v) {
  return warp_reduce<MaxOp>(v);
}
__device__ __forceinline__ float block_max(float v) {
  return block_reduce<MaxOp>(v);
}

}  // namespace stablekernels::cuda
