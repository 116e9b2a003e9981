// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA kernel of the activation family. Torch-free.
//
// grid.x walks rows, grid.y splits a row into chunks of blockDim.x vectors; each
// thread reads VEC elements of each half with one access each and writes VEC
// results: every byte moves once.

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ops/activation/activation_math.h"
#include "stablekernels/cuda_common.cuh"
#include "stablekernels/rows.h"

namespace stablekernels::activation::cuda {

using stablekernels::cuda::from_float;
using stablekernels::cuda::load_vec;
using stablekernels::cuda::pack2;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::store_words;
using stablekernels::cuda::to_float;
using stablekernels::cuda::Vec;

// ---- fast float32 math for 16-bit results --------------------------------------------
//
// The exact forms (activation_math.h: expf, an IEEE division, erff, tanhf) cost 25-33
// SASS instructions per element with bfloat16 (an IEEE division is a reciprocal, five
// FMAs and a branch to a slow path around each element), which made the kernel partly
// instruction-bound (~70% of the issue slots of an H200 at copy bandwidth). The fast
// forms (activation_math.h, over GpuPrims) use one MUFU.EX2 and one MUFU.RCP (2^x and
// 1/x, relative error ~2^-22 and 1 ulp) and 8-20 instructions. They serve float16 and
// bfloat16 only, whose rounding (2^-11, 2^-8) is far above their error; float32 keeps
// the exact forms. Offline emulation over [-120, 120] and 4*randn (each MUFU off by up
// to 3 ulp): relative error <= 1.6e-6 where |result| > 1e-3, absolute error <= 4e-7
// below; rounded to float16 / bfloat16 the worst error is 0.16 of the test tolerance
// (atol + rtol*|ref|). Large |x|: 2^x overflows to inf and 1/inf = 0, so silu(-100) =
// -0 as the exact formula's tiny value; results below 2^-126 flush to 0 (.ftz).

// The primitives of the fast forms (activation_math.h) on the GPU.
struct GpuPrims {
  static __device__ __forceinline__ float exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
  }
  static __device__ __forceinline__ float rcp(float x) {
    float y;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
  }
  static __device__ __forceinline__ float div(float a, float b) { return a * rcp(b); }
  static __device__ __forceinline__ float fma(float a, float b, float c) { return fmaf(a, b, c); }
};

// The form the kernel computes for elements of T: fast for 16-bit types, exact for float.
template <typename Act, typename T>
using KernelAct = std::conditional_t<sizeof(T) == 2, FastAct<Act, GpuPrims>, Act>;

// ---- loads ---------------------------------------------------------------------------

// The VEC elements of v as floats. bfloat16 pairs are split with a shift and a mask of
// their 32-bit word (a bfloat16 is the high half of its float32): converted one element at
// a time, nvcc first copied each high half to a register of its own (PRMT), 56 registers
// per thread instead of 40.
template <typename T, int VEC>
__device__ __forceinline__ void unpack(const Vec<T, VEC>& v, float (&f)[VEC]) {
  if constexpr (std::is_same_v<T, __nv_bfloat16> && VEC % 2 == 0) {
    uint32_t w[VEC / 2];
    memcpy(w, &v, sizeof(w));
#pragma unroll
    for (int k = 0; k < VEC / 2; ++k) {
      f[2 * k] = __uint_as_float(w[k] << 16);
      f[2 * k + 1] = __uint_as_float(w[k] & 0xFFFF0000u);
    }
  } else {
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      f[k] = to_float(v.v[k]);
    }
  }
}

// ---- stores ------------------------------------------------------------------------

// VEC floats rounded to T and stored as one access (16-bit pairs with one two-float
// conversion, F2FP, each).
template <typename T, int VEC>
__device__ __forceinline__ void store_floats(T* p, const float (&f)[VEC]) {
  if constexpr (sizeof(T) == 2 && VEC % 2 == 0) {
    uint32_t w[VEC / 2];
#pragma unroll
    for (int k = 0; k < VEC / 2; ++k) {
      w[k] = pack2<T>(f[2 * k], f[2 * k + 1]);
    }
    store_words<VEC / 2>(reinterpret_cast<uint32_t*>(p), w);
  } else if constexpr (sizeof(T) == 4) {
    uint32_t w[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      w[k] = __float_as_uint(f[k]);
    }
    store_words<VEC>(reinterpret_cast<uint32_t*>(p), w);
  } else {
    static_assert(VEC == 1, "an odd number of 16-bit elements is one element");
    *p = from_float<T>(f[0]);
  }
}

// ---- kernel -------------------------------------------------------------------------

// y[0, VEC) = A(a) * b, in float32, stored as one access.
template <typename A, typename T, int VEC>
__device__ __forceinline__ void act_and_mul_store(T* y, const Vec<T, VEC>& a,
                                                  const Vec<T, VEC>& b) {
  float xa[VEC];
  float xb[VEC];
  unpack<T, VEC>(a, xa);
  unpack<T, VEC>(b, xb);
  float o[VEC];
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    o[k] = A::apply(xa[k]) * xb[k];
  }
  store_floats<T, VEC>(y, o);
}

// input [rows, 2d] -> out [rows, d] = Act(input[:, :d]) * input[:, d:]
// Each thread issues all UNROLL pairs of loads before computing, to keep enough
// bytes in flight per SM to saturate HBM.
template <typename Act, typename T, int VEC, int UNROLL>
__global__ void act_and_mul_kernel(T* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                                   int64_t rows, int64_t d) {
  stablekernels::cuda::pdl_enter();
  using A = KernelAct<Act, T>;
  const int64_t nvec = d / VEC;
  const int64_t chunk = static_cast<int64_t>(blockDim.x) * UNROLL;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + in_rows.offset(row);
    const T* g = x + d;
    T* y = out + out_rows.offset(row);
    for (int64_t base = static_cast<int64_t>(blockIdx.y) * chunk; base < nvec;
         base += chunk * gridDim.y) {
      Vec<T, VEC> a[UNROLL];
      Vec<T, VEC> b[UNROLL];
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const int64_t j = base + u * static_cast<int64_t>(blockDim.x) + threadIdx.x;
        if (j < nvec) {
          a[u] = load_vec<T, VEC>(x + j * VEC);
          b[u] = load_vec<T, VEC>(g + j * VEC);
        }
      }
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const int64_t j = base + u * static_cast<int64_t>(blockDim.x) + threadIdx.x;
        if (j < nvec) {
          act_and_mul_store<A, T, VEC>(y + j * VEC, a[u], b[u]);
        }
      }
    }
  }
}

// The same for rows at a fixed stride (both row layouts of one dimension: every contiguous
// input): grid.x splits a row into chunks of blockDim.x * UNROLL vectors, grid.y walks the
// rows. Against act_and_mul_kernel:
//  - consecutive blocks (x fastest) take consecutive chunks of one row, so the blocks in
//    flight read and write a few long runs of memory, not a chunk of each of ~2000 rows
//    (act_and_mul_kernel's grid.x walks rows);
//  - no RowIndexer (two 104-byte parameters, a branch on ndim and its 64-bit division loop):
//    the parameters are 48 bytes, the vector index is 32-bit (nvec < 2^30, the launch checks)
//    and a thread's first loads need only its block index, the row stride and one multiply.
template <typename Act, typename T, int VEC, int UNROLL>
__global__ void act_and_mul_strided_kernel(T* __restrict__ out, int64_t out_stride,
                                           const T* __restrict__ in, int64_t in_stride,
                                           int64_t rows, int32_t nvec) {
  stablekernels::cuda::pdl_enter();
  using A = KernelAct<Act, T>;
  const int32_t j0 = static_cast<int32_t>(blockIdx.x * blockDim.x * UNROLL + threadIdx.x);
  const int64_t d = static_cast<int64_t>(nvec) * VEC;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const T* x = in + row * in_stride;
    const T* g = x + d;
    T* y = out + row * out_stride;
    Vec<T, VEC> a[UNROLL];
    Vec<T, VEC> b[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int32_t j = j0 + u * static_cast<int32_t>(blockDim.x);
      if (j < nvec) {
        a[u] = load_vec<T, VEC>(x + j * VEC);
        b[u] = load_vec<T, VEC>(g + j * VEC);
      }
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int32_t j = j0 + u * static_cast<int32_t>(blockDim.x);
      if (j < nvec) {
        act_and_mul_store<A, T, VEC>(y + j * VEC, a[u], b[u]);
      }
    }
  }
}

}  // namespace stablekernels::activation::cuda
