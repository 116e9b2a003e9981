// SPDX-License-Identifier: Apache-2.0
#pragma once
// Device helpers shared by the CUDA kernels: float conversion of the element
// types, aligned vectors for 16-byte memory access, single-access stores of computed
// values, 16-bit pairs, block reductions. Torch-free.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

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

// The bits of one vector, as the registers of a single load (uint4 for 16 bytes, uint2
// for 8, uint32_t for 4; other widths the plain struct).
template <typename T, int N>
using packed_t = std::conditional_t<
    sizeof(T) * N == 16, uint4,
    std::conditional_t<sizeof(T) * N == 8, uint2,
                       std::conditional_t<sizeof(T) * N == 4, uint32_t, Vec<T, N>>>>;

// Loads a vector as one access of its full width, issued where it is written (asm
// volatile: the compiler neither sinks it behind a later branch nor reorders it with the
// other loads). Kept as the packed words until used: a Vec<bf16, 8> assigned under a
// condition was kept as eight 16-bit values, unpacked (PRMT) right after the load, which
// made the thread wait for the data before it issued its next loads.
template <typename T, int N>
__device__ __forceinline__ packed_t<T, N> load_packed(const T* p) {
  using P = packed_t<T, N>;
  P u;
  if constexpr (std::is_same_v<P, uint4>) {
    asm volatile("ld.global.nc.v4.b32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
                 : "l"(p));
  } else if constexpr (std::is_same_v<P, uint2>) {
    asm volatile("ld.global.nc.v2.b32 {%0, %1}, [%2];" : "=r"(u.x), "=r"(u.y) : "l"(p));
  } else if constexpr (std::is_same_v<P, uint32_t>) {
    asm volatile("ld.global.nc.b32 %0, [%1];" : "=r"(u) : "l"(p));
  } else {
    u = load_vec<T, N>(p);
  }
  return u;
}

template <typename T, int N>
__device__ __forceinline__ Vec<T, N> unpack(const packed_t<T, N>& u) {
  Vec<T, N> v;
  memcpy(&v, &u, sizeof(v));
  return v;
}

// Elements per 16-byte access.
template <typename T>
constexpr int kVec16 = static_cast<int>(16 / sizeof(T));

// Where a load's line goes in the caches' eviction order, in L1 and (through an access
// policy) in L2: kLast for data the kernel reads again, kFirst for its last read.
enum class Evict { kFirst, kLast };

// An L2 eviction policy (createpolicy.fractional over the whole line) for loads that take
// one (load16_l2): the policy is a register, so one load instruction can take either.
template <Evict E>
__device__ __forceinline__ uint64_t l2_policy() {
  uint64_t pol;
  if constexpr (E == Evict::kLast) {
    asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(pol));
  } else {
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
  }
  return pol;
}

// One 16-byte load with an eviction priority in L1 and in L2 (ld.global.L1::evict_*
// .L2::cache_hint under l2_policy<E>), issued where it is written (asm volatile, as
// load_packed).
template <Evict E>
__device__ __forceinline__ uint4 load16_evict(const void* p) {
  const uint64_t pol = l2_policy<E>();
  uint4 u;
  if constexpr (E == Evict::kLast) {
    asm volatile("ld.global.L1::evict_last.L2::cache_hint.v4.b32 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
                 : "l"(p), "l"(pol));
  } else {
    asm volatile("ld.global.L1::evict_first.L2::cache_hint.v4.b32 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
                 : "l"(p), "l"(pol));
  }
  return u;
}

// One 16-byte load under the L2 policy `pol` (l2_policy), not allocated in L1 (a read the
// thread does not repeat), issued where it is written (asm volatile, as load_packed).
__device__ __forceinline__ uint4 load16_l2(const void* p, uint64_t pol) {
  uint4 u;
  asm volatile("ld.global.L1::no_allocate.L2::cache_hint.v4.b32 {%0, %1, %2, %3}, [%4], %5;"
               : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
               : "l"(p), "l"(pol));
  return u;
}

// The first statement of every kernel (they are launched with programmatic dependent launch
// where the device allows: kernel_launch.cuh): wait for the kernel ahead in the stream to
// complete, its writes visible (griddepcontrol.wait), then let the next kernel be scheduled
// (griddepcontrol.launch_dependents). Nothing before it may touch global memory. sm_90 and
// newer; nothing on older archs, where the host never launches a kernel that way.
__device__ __forceinline__ void pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// WORDS 32-bit words stored as one plain access (st.global.v4 / .v2 in PTX, STG.E.128 /
// STG.E.64 in SASS). Where a kernel computes its values, nvcc lowers the struct copy of
// store_vec (and a uint4 assigned through a pointer) into one store per member: four
// 4-byte stores for 16 bytes, four times the store instructions and partial sectors for L2
// to merge. __stwb gives one access, but a strong one (STG.E.128.STRONG.SM).
template <int WORDS>
__device__ __forceinline__ void store_words(uint32_t* p, const uint32_t (&w)[WORDS]) {
  static_assert(WORDS == 1 || WORDS == 2 || WORDS == 4, "one access is 4, 8 or 16 bytes");
  if constexpr (WORDS == 4) {
    asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(w[0]), "r"(w[1]),
                 "r"(w[2]), "r"(w[3])
                 : "memory");
  } else if constexpr (WORDS == 2) {
    asm volatile("st.global.v2.b32 [%0], {%1, %2};" ::"l"(p), "r"(w[0]), "r"(w[1]) : "memory");
  } else {
    *p = w[0];
  }
}

// store_words where `pred` holds, as one predicated store. A store under a branch lets
// ptxas sink the loads whose values only that branch uses behind it (past an early exit,
// or into the branch): there they wait for whatever decided the branch, a second trip to
// memory where the loads had gone out together.
template <int WORDS>
__device__ __forceinline__ void store_words_if(bool pred, uint32_t* p, const uint32_t (&w)[WORDS]) {
  static_assert(WORDS == 1 || WORDS == 2 || WORDS == 4, "one access is 4, 8 or 16 bytes");
  const uint32_t on = pred ? 1u : 0u;
  if constexpr (WORDS == 4) {
    asm volatile(
        "{\n .reg .pred q;\n setp.ne.u32 q, %5, 0;\n"
        " @q st.global.v4.b32 [%0], {%1, %2, %3, %4};\n}" ::"l"(p),
        "r"(w[0]), "r"(w[1]), "r"(w[2]), "r"(w[3]), "r"(on)
        : "memory");
  } else if constexpr (WORDS == 2) {
    asm volatile(
        "{\n .reg .pred q;\n setp.ne.u32 q, %3, 0;\n @q st.global.v2.b32 [%0], {%1, %2};\n}" ::"l"(
            p),
        "r"(w[0]), "r"(w[1]), "r"(on)
        : "memory");
  } else {
    asm volatile(
        "{\n .reg .pred q;\n setp.ne.u32 q, %2, 0;\n @q st.global.b32 [%0], %1;\n}" ::"l"(p),
        "r"(w[0]), "r"(on)
        : "memory");
  }
}

// store_packed where `pred` holds: one predicated store where the vector is 4, 8 or 16
// bytes (store_words_if), else a branch.
template <typename T, int VEC>
__device__ __forceinline__ void store_packed_if(bool pred, T* p, const Vec<T, VEC>& v) {
  constexpr int kBytes = static_cast<int>(sizeof(T)) * VEC;
  if constexpr (kBytes == 4 || kBytes == 8 || kBytes == 16) {
    uint32_t w[kBytes / 4];
    memcpy(w, &v, kBytes);
    store_words_if<kBytes / 4>(pred, reinterpret_cast<uint32_t*>(p), w);
  } else if (pred) {
    store_vec<T, VEC>(p, v);
  }
}

// A vector stored as one access of its full width when that is 4, 8 or 16 bytes
// (store_words), else as store_vec.
template <typename T, int VEC>
__device__ __forceinline__ void store_packed(T* p, const Vec<T, VEC>& v) {
  constexpr int kBytes = static_cast<int>(sizeof(T)) * VEC;
  if constexpr (kBytes == 4 || kBytes == 8 || kBytes == 16) {
    uint32_t w[kBytes / 4];
    memcpy(w, &v, kBytes);
    store_words<kBytes / 4>(reinterpret_cast<uint32_t*>(p), w);
  } else {
    store_vec<T, VEC>(p, v);
  }
}

// Two floats rounded to a 16-bit T and packed into a word, low half first, with one
// two-float conversion (F2FP); and back.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  uint32_t w;
  memcpy(&w, &h, sizeof(w));
  return w;
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  uint32_t w;
  memcpy(&w, &h, sizeof(w));
  return w;
}

template <typename T>
__device__ __forceinline__ float2 unpack2(uint32_t w);
template <>
__device__ __forceinline__ float2 unpack2<__nv_bfloat16>(uint32_t w) {
  // a bfloat16 is the high half of its float32: a shift and a mask, no conversion
  return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xFFFF0000u));
}
template <>
__device__ __forceinline__ float2 unpack2<__half>(uint32_t w) {
  __half2 h;
  memcpy(&h, &w, sizeof(w));
  return __half22float2(h);
}

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
