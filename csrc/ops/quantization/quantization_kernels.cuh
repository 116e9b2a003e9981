// SPDX-License-Identifier: Apache-2.0
#pragma once
// CUDA kernels of the quantization family. Torch-free: raw pointers, RowIndexer, stream.
//
// Per tensor (dynamic_scaled_fp8_quant): tensor_amax_kernel reduces each block's
// slice to one scale candidate, max(amax / 448, kMinScale), and folds it into the
// scale buffer (zeroed beforehand) with atomicMax on its bits: positive floats order
// like their bit patterns as signed ints, and division by 448 is monotonic, so the
// maximum candidate is exactly the scale of the whole tensor. quantize_kernel then
// reads the scale and converts, walking backward from where the amax pass ended (its end
// of the input kept in L2 by eviction priorities) and, on sm_90 and newer, launched
// programmatically so that it starts during the amax pass's last blocks;
// static_scaled_fp8_quant runs only the conversion.
// Both walk (row, vector) pairs in a grid-stride loop with 16-byte loads where the
// layout allows; a tensor with contiguous rows is walked as one long row. Dense inputs that
// one block, or on sm_90 and newer one cluster of blocks, holds in registers take
// dynamic_quant_fused_kernel instead: one launch, no zeroing. Larger dense inputs, up to what
// the chip holds, take dynamic_quant_grid_kernel: one cooperative launch, a grid barrier
// between the amax and the conversion, the input read from memory once where registers,
// shared memory and L2 keep it.
//
// Per token: one block per row. The register kernel keeps the row slice in registers
// between the amax and the conversion, so each input byte is read once; rows too long
// for it use the generic kernel, which reads the row twice (the second time mostly
// from L2). All math is float32.

#include <cooperative_groups.h>
#include <cuda_fp8.h>

#include <cfloat>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ops/quantization/quantization_math.h"
#include "stablekernels/cuda_common.cuh"
#include "stablekernels/rows.h"

namespace stablekernels::quantization::cuda {

using stablekernels::cuda::block_max;
using stablekernels::cuda::load_vec;
using stablekernels::cuda::store_vec;
using stablekernels::cuda::to_float;
using stablekernels::cuda::Vec;

constexpr int kRowKernelThreads = 256;
// The largest block of per_token_kernel (decode rows take up to 512 threads; see
// QuantPolicy::per_token_decode_threads).
constexpr int kRowKernelMaxThreads = 512;
constexpr int kGenericThreads = 1024;
constexpr int kFlatThreads = 256;
constexpr int kFlatUnroll = 4;
// dynamic_quant_fused_kernel: the largest block, and the most vectors a thread holds.
constexpr int kOneBlockThreads = 1024;
constexpr int kOneBlockMaxItems = 8;

// The division q = x / s of the rules, element by element. `/` compiles to a reciprocal
// (MUFU), five FMAs, a range check (FCHK) and a branch to a slow path per element, which
// made these kernels issue-bound rather than memory-bound. For 16-bit inputs and a scale in
// [2^-64, 2^64] (`fast`), Divider instead computes r = RN(1/s) once and per element
//   x' = x clamped to [-c, c] (NaN kept), q0 = RN(x' * r), e = RN(s * q0 - x'),
//   q = RN(q0 - e * r)  (one FMUL, two FFMAs),
// which gives the correctly rounded x' / s: checked bit for bit against the float division
// for every bf16 and fp16 x (all mantissas against every scale mantissa, and every x
// against scales over the whole range; ci/tests/quantization_fastdiv_check.cpp, a farm test).
// c is a power of two in (512 s, 1024 s]: a clamped |x| gives |q| > 448, which saturates like
// |x| / s does, and inf or a huge x cannot overflow q0 (the FMA residual would turn that into
// NaN). The residual is negated (s * q0 - x, not x - s * q0) so that -0 / s stays -0. float32
// inputs and other scales keep the division: those were not checked exhaustively.
// The clamp runs on pairs in T (clamp_widen_x2), which needs c in T: bf16 holds every such c;
// fp16 holds c up to 2^15 (s < 64), and below its smallest subnormal 2^-24 the clamp takes
// 2^-24 instead (then s < 2^-33, so every nonzero |x| / s, clamped or not, saturates), so fp16
// inputs with s >= 64 (an amax above 28672) keep the division too.
struct Divider {
  float s;
  float r;
  float c;
  uint32_t c_x2;      // the clamp bound in both 16-bit halves of T (exact: a power of two)
  uint32_t neg_c_x2;  // its negative likewise
  bool fast;
};

template <typename T>
__device__ __forceinline__ Divider make_divider(float s) {
  Divider d;
  d.s = s;
  d.r = __frcp_rn(s);
  d.c = __uint_as_float((__float_as_uint(s) & 0x7F800000u) + (10u << 23));
  if constexpr (std::is_same_v<T, __half>) {
    d.fast = s >= 0x1p-64f && s < 64.0f;  // false for NaN
    d.c_x2 =
        static_cast<uint32_t>(__half_as_ushort(__float2half_rn(fmaxf(d.c, 0x1p-24f)))) * 0x10001u;
  } else {
    d.fast = sizeof(T) == 2 && s >= 0x1p-64f && s <= 0x1p64f;  // false for NaN
    d.c_x2 = (__float_as_uint(d.c) >> 16) * 0x10001u;
  }
  d.neg_c_x2 = d.c_x2 | 0x80008000u;
  return d;
}

// The pair type of a 16-bit T.
template <typename T>
struct Pair16;
template <>
struct Pair16<__nv_bfloat16> {
  using type = __nv_bfloat162;
};
template <>
struct Pair16<__half> {
  using type = __half2;
};

// min(max(x, -c), c), NaN kept (min.NaN / max.NaN: sm_80+, the oldest arch built).
__device__ __forceinline__ float clamp_keep_nan(float x, float c) {
  float y;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(y) : "f"(x), "f"(-c));
  asm("min.NaN.f32 %0, %1, %2;" : "=f"(y) : "f"(y), "f"(c));
  return y;
}

template <bool FAST>
__device__ __forceinline__ float divide(float x, const Divider& d) {
  if constexpr (FAST) {
    const float xc = clamp_keep_nan(x, d.c);
    const float q0 = __fmul_rn(xc, d.r);
    const float e = __fmaf_rn(d.s, q0, -xc);
    return __fmaf_rn(-e, d.r, q0);
  } else {
    return x / d.s;
  }
}

// fp8 bytes of two quotients, low byte first: SATFINITE maps +-inf and |q| > 448 to +-448 and
// rounds the rest to nearest even; a NaN gives an fp8 NaN (its sign fixed by fp8_fix_nan).
__device__ __forceinline__ uint32_t fp8x2_bits(float lo, float hi) {
  return static_cast<uint32_t>(
      __nv_cvt_float2_to_fp8x2(make_float2(lo, hi), __NV_SATFINITE, __NV_E4M3));
}

// Every fp8 NaN byte (0x7F or 0xFF: low seven bits set, which no finite value has) of a
// word becomes kFp8NaN; three integer instructions per four bytes.
__device__ __forceinline__ uint32_t fp8_fix_nan(uint32_t w) {
  const uint32_t nan = ((w & 0x7F7F7F7Fu) + 0x01010101u) & 0x80808080u;
  return w & ~nan;
}

// 16-bit pairs with |x| > c clamped (NaN kept) in one HMNMX2 each way per two elements, then
// widened to float (bf16 by shift / mask): the same values as clamping the floats (the bound
// is a power of two, exact in T, and min / max are exact), in fewer instructions.
template <typename T>
__device__ __forceinline__ float2 clamp_widen_x2(uint32_t w, const Divider& d) {
  typename Pair16<T>::type v, neg_c, c;
  memcpy(&v, &w, sizeof(w));
  memcpy(&neg_c, &d.neg_c_x2, sizeof(neg_c));
  memcpy(&c, &d.c_x2, sizeof(c));
  v = __hmin2_nan(__hmax2_nan(v, neg_c), c);
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    memcpy(&w, &v, sizeof(w));
    return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xFFFF0000u));
  } else {
    return __half22float2(v);
  }
}

// The quotients of elements k, k + 1 (k even) as fp8 bytes in the low 16 bits.
template <typename T, int VEC, bool FAST>
__device__ __forceinline__ uint32_t quantize_pair(const Vec<T, VEC>& v, int k, const Divider& d) {
  if constexpr (FAST && sizeof(T) == 2) {
    uint32_t w;
    memcpy(&w, &v.v[k], sizeof(w));
    const float2 x = clamp_widen_x2<T>(w, d);
    // already clamped: divide<true> clamps again, which changes nothing, so skip it
    const float q0 = __fmul_rn(x.x, d.r);
    const float q1 = __fmul_rn(x.y, d.r);
    return fp8x2_bits(__fmaf_rn(-__fmaf_rn(d.s, q0, -x.x), d.r, q0),
                      __fmaf_rn(-__fmaf_rn(d.s, q1, -x.y), d.r, q1));
  } else {
    return fp8x2_bits(divide<FAST>(to_float(v.v[k]), d), divide<FAST>(to_float(v.v[k + 1]), d));
  }
}

// y[0, VEC) <- fp8(v / s); VEC % 4 == 0 builds and stores whole words.
template <typename T, int VEC, bool FAST>
__device__ __forceinline__ void store_quantized(uint8_t* y, const Vec<T, VEC>& v,
                                                const Divider& d) {
  if constexpr (VEC % 4 == 0) {
    Vec<uint32_t, VEC / 4> o;
#pragma unroll
    for (int k = 0; k < VEC / 4; ++k) {
      o.v[k] = fp8_fix_nan(quantize_pair<T, VEC, FAST>(v, 4 * k, d) |
                           (quantize_pair<T, VEC, FAST>(v, 4 * k + 2, d) << 16));
    }
    store_vec<uint32_t, VEC / 4>(reinterpret_cast<uint32_t*>(y), o);
  } else {
    Vec<uint8_t, VEC> o;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const float q = divide<FAST>(to_float(v.v[k]), d);
      o.v[k] = static_cast<uint8_t>(fp8_fix_nan(fp8x2_bits(q, 0.0f)) & 0xFFu);
    }
    store_vec<uint8_t, VEC>(y, o);
  }
}

// store_quantized with the division the Divider allows (its `fast`, known at run time).
template <typename T, int VEC>
__device__ __forceinline__ void store_quantized(uint8_t* y, const Vec<T, VEC>& v,
                                                const Divider& d) {
  if (d.fast) {
    store_quantized<T, VEC, true>(y, v, d);
  } else {
    store_quantized<T, VEC, false>(y, v, d);
  }
}

// max(m, |x|) over the vector, NaN ignored (fmaxf) but +-inf counted: one FMNMX per element.
// A row or block whose result is inf recomputes with vec_amax (rare; see per_token_kernel).
// 16-bit pairs take the max in T (exact), half an AND and half an HMNMX2 per element.
template <typename T, int VEC>
__device__ __forceinline__ float vec_amax_with_inf(const Vec<T, VEC>& v, float m) {
  if constexpr (sizeof(T) == 2 && VEC % 2 == 0) {
    typename Pair16<T>::type m2;
    memset(&m2, 0, sizeof(m2));  // +0 in both halves
#pragma unroll
    for (int k = 0; k < VEC; k += 2) {
      typename Pair16<T>::type p;
      memcpy(&p, &v.v[k], sizeof(p));
      m2 = __hmax2(m2, __habs2(p));  // max.{bf16,f16}x2: a NaN loses
    }
    return fmaxf(m, fmaxf(to_float(m2.x), to_float(m2.y)));
  } else {
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      m = fmaxf(m, fabsf(to_float(v.v[k])));
    }
    return m;
  }
}

template <typename T, int VEC>
__device__ __forceinline__ float vec_amax(const Vec<T, VEC>& v, float m) {
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    m = fmaxf(m, finite_abs(to_float(v.v[k])));
  }
  return m;
}

// Vector i of a walk over nvec vectors, counted from the front or, when `backward`, from
// the back.
__device__ __forceinline__ int64_t walk_index(int64_t i, int64_t nvec, bool backward) {
  return backward ? nvec - 1 - i : i;
}

// The L2 priorities of the amax pass's loads (dense walks of 16-byte vectors): the vectors
// from index `from` to the end, where the conversion pass starts its backward walk, as
// evict-last, the ones before as evict-first, so that the end of the input is what L2 still
// holds for the conversion. The conversion's plain loads read them last; the lines are not
// pinned (reading twice the L2 size afterwards evicts them, as it does any other line).
struct L2Keep {
  int64_t from;
};

// The vectors base + u * step (u < kFlatUnroll) below nvec (walk_index), loaded into v:
// kFlatUnroll independent loads in flight per thread; where HINT, under the L2 priorities of
// `keep`.
template <typename T, int VEC, bool HINT = false>
__device__ __forceinline__ void load_flat(const T* in, int64_t base, int64_t step, int64_t nvec,
                                          Vec<T, VEC> (&v)[kFlatUnroll], bool backward = false,
                                          L2Keep keep = {0}) {
  namespace sc = stablekernels::cuda;
  static_assert(!HINT || sizeof(Vec<T, VEC>) == 16, "L2 priorities on 16-byte loads only");
  uint64_t keep_pol = 0;
  uint64_t drop_pol = 0;
  if constexpr (HINT) {
    keep_pol = sc::l2_policy<sc::Evict::kLast>();
    drop_pol = sc::l2_policy<sc::Evict::kFirst>();
  }
#pragma unroll
  for (int u = 0; u < kFlatUnroll; ++u) {
    const int64_t i = base + u * step;
    if (i < nvec) {
      const int64_t j = walk_index(i, nvec, backward);
      if constexpr (HINT) {
        const uint4 w = sc::load16_l2(in + j * VEC, j >= keep.from ? keep_pol : drop_pol);
        memcpy(&v[u], &w, sizeof(w));
      } else {
        v[u] = load_vec<T, VEC>(in + j * VEC);
      }
    }
  }
}

// The per-tensor kernels walk a [rows, nvec] grid of vectors in one of two ways.
// DENSE (rows == 1: a single row, or rows back to back in every tensor the kernel
// touches): a flat grid-stride loop, kFlatUnroll independent loads in flight per thread.
// Otherwise: tiles of blockDim.x vectors of one row, so a row's offset is computed once
// per tile (RowIndexer::offset divides by each collapsed dim size).
// HINT: dense walks load under the L2 priorities of `keep` (L2Keep).
template <typename T, int VEC, bool DENSE, bool HINT = false, typename F>
__device__ __forceinline__ void for_each_vec(const T* in, const RowIndexer& in_rows, int64_t rows,
                                             int64_t nvec, F&& f, bool backward = false,
                                             L2Keep keep = {0}) {
  if constexpr (DENSE) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; base < nvec;
         base += step * kFlatUnroll) {
      Vec<T, VEC> v[kFlatUnroll];
      load_flat<T, VEC, HINT>(in, base, step, nvec, v, false, keep);
#pragma unroll
      for (int u = 0; u < kFlatUnroll; ++u) {
        const int64_t i = base + u * step;
        if (i < nvec) {
          f(int64_t{0}, i, v[u]);
        }
      }
    }
  } else {
    const int64_t tiles_per_row = (nvec + blockDim.x - 1) / blockDim.x;
    const int64_t tiles = rows * tiles_per_row;
    for (int64_t walked = blockIdx.x; walked < tiles; walked += gridDim.x) {
      const int64_t tile = walk_index(walked, tiles, backward);
      const int64_t row = tile / tiles_per_row;
      const int64_t j = (tile - row * tiles_per_row) * blockDim.x + threadIdx.x;
      if (j < nvec) {
        f(row, j, load_vec<T, VEC>(in + in_rows.offset(row) + j * VEC));
      }
    }
  }
}

// scale <- max(scale, max(amax(this block's slice) / 448, kMinScale)) by atomicMax on the bits.
// The slice's max |x| is taken with inf counted (one instruction per element); a block that
// sees an inf reads its slice again with inf ignored. HINT (dense walks of 16-byte vectors):
// the loads under the L2 priorities of `keep`.
template <typename T, int VEC, bool DENSE, bool HINT>
__global__ void __launch_bounds__(kFlatThreads)
    tensor_amax_kernel(float* scale, const T* in, RowIndexer in_rows, int64_t rows, int64_t nvec,
                       L2Keep keep) {
  stablekernels::cuda::pdl_enter();
  float m = 0.0f;
  for_each_vec<T, VEC, DENSE, HINT>(
      in, in_rows, rows, nvec,
      [&](int64_t, int64_t, const Vec<T, VEC>& v) { m = vec_amax_with_inf<T, VEC>(v, m); }, false,
      keep);
  m = block_max(m);
  if (m > FLT_MAX) {  // the same for the whole block
    m = 0.0f;
    for_each_vec<T, VEC, DENSE>(
        in, in_rows, rows, nvec,
        [&](int64_t, int64_t, const Vec<T, VEC>& v) { m = vec_amax<T, VEC>(v, m); });
    m = block_max(m);
  }
  if (threadIdx.x == 0) {
    atomicMax(reinterpret_cast<int*>(scale), __float_as_int(scale_from_amax(m)));
  }
}

template <typename T, int VEC, bool FAST>
__device__ __forceinline__ void quantize_walk(uint8_t* out, const RowIndexer& out_rows, const T* in,
                                              const RowIndexer& in_rows, const Divider& d,
                                              int64_t rows, int64_t nvec, bool backward) {
  for_each_vec<T, VEC, false>(
      in, in_rows, rows, nvec,
      [&](int64_t row, int64_t j, const Vec<T, VEC>& v) {
        store_quantized<T, VEC, FAST>(out + out_rows.offset(row) + j * VEC, v, d);
      },
      backward);
}

// out <- fp8(in / *scale), element by element; the scale picks the division once per thread
// (row walks) or once per kFlatUnroll vectors (dense walks). Dense walks issue their input
// loads before the Divider is made: making it waits for the scale's load (the reciprocal has
// a branch on the scale's exponent), and the loads, whose addresses do not depend on the
// scale, would otherwise wait behind it; in decode (one vector per thread) that doubled the
// kernel's latency. The empty volatile asm keeps the Divider from being hoisted above the
// loads (out of the loop).
//
// `backward`: the walk starts from the end of the input. After tensor_amax_kernel, whose
// walk ends there, the first reads find what it read last still in L2.
//
// PDL (dense walks, right after tensor_amax_kernel): a thread issues its first loads before
// pdl_enter, then reads the scale. Every other kernel waits before touching memory; these
// loads may go first because the input is what the amax kernel only reads, and the amax
// kernel let this one be scheduled only after its own wait (pdl_enter), when all work
// before it, which may have written the input, had completed.
template <typename T, int VEC, bool DENSE, bool PDL = false>
__global__ void __launch_bounds__(kFlatThreads)
    quantize_kernel(uint8_t* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                    const float* scale, int64_t rows, int64_t nvec, bool backward) {
  static_assert(DENSE || !PDL, "the early loads are the dense walk's");
  if constexpr (!PDL) {
    stablekernels::cuda::pdl_enter();
  }
  if constexpr (DENSE) {
    float sv = 0.0f;
    if constexpr (!PDL) {
      sv = *scale;
    }
    bool scale_read = !PDL;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; base < nvec;
         base += step * kFlatUnroll) {
      Vec<T, VEC> v[kFlatUnroll];
      load_flat<T, VEC>(in, base, step, nvec, v, backward);
      if (!scale_read) {
        stablekernels::cuda::pdl_enter();
        sv = *scale;
        scale_read = true;
      }
      asm volatile("" : "+f"(sv));
      const Divider d = make_divider<T>(sv);
#pragma unroll
      for (int u = 0; u < kFlatUnroll; ++u) {
        const int64_t i = base + u * step;
        if (i < nvec) {
          store_quantized<T, VEC>(out + walk_index(i, nvec, backward) * VEC, v[u], d);
        }
      }
    }
  } else {
    const Divider d = make_divider<T>(*scale);
    if (d.fast) {
      quantize_walk<T, VEC, true>(out, out_rows, in, in_rows, d, rows, nvec, backward);
    } else {
      quantize_walk<T, VEC, false>(out, out_rows, in, in_rows, d, rows, nvec, backward);
    }
  }
}

// quantize_kernel's dense walk for decode-sized inputs (nvec < 2^31 vectors of VEC
// elements, one a thread): no loop, 32-bit indices, the two loads issued together. Its
// per-thread path is what a small launch waits for: the grid-stride kernel (16-byte vectors,
// kFlatUnroll loads a thread with their bounds checks) issued 4x torch.compile's
// instructions a warp (ncu, 1 x 4096 bf16).
template <typename T, int VEC>
__global__ void __launch_bounds__(kFlatThreads)
    quantize_decode_kernel(uint8_t* __restrict__ out, const T* __restrict__ in,
                           const float* __restrict__ scale, int nvec) {
  stablekernels::cuda::pdl_enter();
  const int j = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (j >= nvec) {
    return;
  }
  const Vec<T, VEC> v = load_vec<T, VEC>(in + j * VEC);
  store_quantized<T, VEC>(out + j * VEC, v, make_divider<T>(*scale));
}

// The scale of a row with absolute maximum m (scale_ub: NaN when absent; fminf ignores it).
__device__ __forceinline__ float row_scale(float m, float ub) {
  return scale_from_amax(fminf(m, ub));
}

// The stores of a slice that load_slice_amax loaded (vectors first + i * stride). EXACT: every
// vector of the slice is in the row (no bounds).
template <typename T, int VEC, int ITEMS, bool FAST, bool EXACT = false>
__device__ __forceinline__ void store_row(uint8_t* y, const Vec<T, VEC> (&xv)[ITEMS], int nvec,
                                          const Divider& d, int first, int stride) {
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int j = first + i * stride;
    if (EXACT || j < nvec) {
      store_quantized<T, VEC, FAST>(y + static_cast<int64_t>(j) * VEC, xv[i], d);
    }
  }
}

// A thread's slice of a row, ITEMS vectors (vector j = first + i * stride of the nvec at x;
// threadIdx.x and blockDim.x when a block holds the row), loaded into xv, and the max |x| over
// the whole block's slices. The max counts inf first (one instruction per element); a block
// whose slices hold an inf takes it again over the registers with inf ignored (the branch is
// the same for the whole block). EXACT: every vector of the slice is in the row (no bounds).
template <typename T, int VEC, int ITEMS, bool EXACT = false>
__device__ __forceinline__ float load_slice_amax(const T* x, int nvec, Vec<T, VEC> (&xv)[ITEMS],
                                                 int first, int stride) {
  float m = 0.0f;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int j = first + i * stride;
    if (EXACT || j < nvec) {
      xv[i] = load_vec<T, VEC>(x + static_cast<int64_t>(j) * VEC);
      m = vec_amax_with_inf<T, VEC>(xv[i], m);
    }
  }
  m = block_max(m);
  if (m > FLT_MAX) {
    m = 0.0f;
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      if (EXACT || first + i * stride < nvec) {
        m = vec_amax<T, VEC>(xv[i], m);
      }
    }
    m = block_max(m);
  }
  return m;
}

// The max of a block-uniform m over the blocks of the cluster, which is the whole grid (one
// cluster of gridDim.x <= 32 blocks, sm_90 and newer), for every thread. Each block puts its
// m in its own shared memory; after a cluster barrier the lanes of every warp read one
// block's value each. Ends by arriving at a second cluster barrier, which cluster_done waits
// for before the block exits: a block's shared memory must outlive the other blocks' reads.
__device__ __forceinline__ float cluster_max(float m) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  __shared__ float block_m;
  if (threadIdx.x == 0) {
    block_m = m;
  }
  cg::this_cluster().sync();
  const unsigned lane = threadIdx.x % 32;
  const float c = lane < gridDim.x ? *cg::this_cluster().map_shared_rank(&block_m, lane) : 0.0f;
  cg::this_cluster().barrier_arrive();
  return stablekernels::cuda::warp_max(c);
#else
  __trap();  // launched only on devices with clusters
  return m;
#endif
}
__device__ __forceinline__ void cluster_done() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cooperative_groups::this_cluster().barrier_wait();
#endif
}

// dynamic_scaled_fp8_quant of a dense input small enough for one block, or (CLUSTER) for one
// cluster of blocks: the amax, the scale and the conversion in one kernel, the input in
// registers (ITEMS vectors per thread, vector j = global thread + i * grid threads) from
// the amax to the conversion. No scale zeroing and no second launch: in decode these, not
// the bytes, are the cost. The results are those of tensor_amax_kernel + quantize_kernel bit
// for bit: the scale is scale_from_amax of the same maximum (max is exact and order-free),
// and the quotients use the same Divider.
template <typename T, int VEC, int ITEMS, bool CLUSTER>
__global__ void __launch_bounds__(kOneBlockThreads)
    dynamic_quant_fused_kernel(uint8_t* out, float* scale, const T* in, int64_t nvec_len) {
  stablekernels::cuda::pdl_enter();
  const int nvec = static_cast<int>(nvec_len);
  const int first = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const int stride = static_cast<int>(gridDim.x * blockDim.x);
  Vec<T, VEC> xv[ITEMS];
  float m = load_slice_amax<T, VEC, ITEMS>(in, nvec, xv, first, stride);
  if constexpr (CLUSTER) {
    m = cluster_max(m);
  }
  const Divider d = make_divider<T>(scale_from_amax(m));
  if (first == 0) {
    *scale = d.s;
  }
  if (d.fast) {
    store_row<T, VEC, ITEMS, true>(out, xv, nvec, d, first, stride);
  } else {
    store_row<T, VEC, ITEMS, false>(out, xv, nvec, d, first, stride);
  }
  if constexpr (CLUSTER) {
    cluster_done();
  }
}

// dynamic_scaled_fp8_quant of a dense input of 16-byte vectors in one cooperative kernel:
// one block of kGridThreads an SM, every block resident (the launch is cooperative), the
// input read from memory once where the chip holds it. The input is cut into slabs of one
// vector a thread of the grid (slab k: vectors k * slab + global thread); a thread keeps
// its vectors of the first kGridRegItems slabs in registers, of the next `held` slabs in
// shared memory, and reads those of the rest (`through L2`) for the amax, the vectors from
// `keep_from` on evict-last in L2 (as tensor_amax_kernel's L2Keep), then again after the
// barrier, from the end backward. The register and shared-memory slabs are
// read evict-first: L2 is left to the rest. The blocks' scale candidates meet in sync->scale_bits
// (atomicMax on the bits, as tensor_amax_kernel), and sync->arrived counts the blocks past
// theirs: the grid barrier. Both are zero at the launch. Results are those of
// tensor_amax_kernel + quantize_kernel bit for bit: the same maximum, the same Divider.
constexpr int kGridThreads = 1024;
constexpr int kGridRegItems = 8;
struct GridSync {
  int scale_bits;
  unsigned arrived;
};

// The 16 bytes of w as a Vec of T.
template <typename T, int VEC>
__device__ __forceinline__ Vec<T, VEC> as_vec(const uint4& w) {
  Vec<T, VEC> v;
  memcpy(&v, &w, sizeof(w));
  return v;
}

// 16 bytes from global to shared memory by cp.async under the L2 policy `pol`.
__device__ __forceinline__ void copy_async16_l2(void* smem, const void* gmem, uint64_t pol) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;\n" ::"r"(dst),
               "l"(gmem), "l"(pol)
               : "memory");
}

// The grid barrier of dynamic_quant_grid_kernel, for thread 0 of each block: folds the
// block's scale candidate into sync->scale_bits, arrives, waits for every block, and returns
// the scale of the whole input.
__device__ __forceinline__ float grid_scale(GridSync* sync, float candidate) {
  atomicMax(&sync->scale_bits, __float_as_int(candidate));
  __threadfence();
  atomicAdd(&sync->arrived, 1u);
  unsigned arrived = 0;
  do {
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];"
                 : "=r"(arrived)
                 : "l"(&sync->arrived)
                 : "memory");
  } while (arrived < gridDim.x);
  int bits;
  asm volatile("ld.relaxed.gpu.global.s32 %0, [%1];"
               : "=r"(bits)
               : "l"(&sync->scale_bits)
               : "memory");
  return __int_as_float(bits);
}

// max(m, |x|) over the elements of a 16-byte vector, as vec_amax_with_inf (inf counted, NaN
// ignored). For 16-bit T the maximum is kept as a pair in one word `m2` (max.{bf16,f16}x2 of
// the words with their sign bits cleared: a NaN loses), widened once by amax_of_pair.
template <typename T>
__device__ __forceinline__ void amax16_x2(const uint4& w, uint32_t& m2) {
  static_assert(sizeof(T) == 2, "16-bit pairs");
  constexpr uint32_t kAbs = 0x7FFF7FFFu;
  const uint32_t x[4] = {w.x & kAbs, w.y & kAbs, w.z & kAbs, w.w & kAbs};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      asm("max.bf16x2 %0, %0, %1;" : "+r"(m2) : "r"(x[k]));
    } else {
      asm("max.f16x2 %0, %0, %1;" : "+r"(m2) : "r"(x[k]));
    }
  }
}
template <typename T>
__device__ __forceinline__ float amax_of_pair(uint32_t m2) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return fmaxf(__uint_as_float(m2 << 16), __uint_as_float(m2 & 0xFFFF0000u));
  } else {
    return fmaxf(__half2float(__ushort_as_half(static_cast<unsigned short>(m2 & 0xFFFFu))),
                 __half2float(__ushort_as_half(static_cast<unsigned short>(m2 >> 16))));
  }
}
// A thread's running maximum in dynamic_quant_grid_kernel: a word of pairs for 16-bit T, a
// float otherwise.
template <typename T>
struct GridAmax {
  uint32_t m2 = 0;  // +0 in both halves
  float m = 0.0f;
  __device__ __forceinline__ void add(const uint4& w) {
    if constexpr (sizeof(T) == 2) {
      amax16_x2<T>(w, m2);
    } else {
      m = vec_amax_with_inf<T, 4>(as_vec<T, 4>(w), m);
    }
  }
  __device__ __forceinline__ float value() const {
    if constexpr (sizeof(T) == 2) {
      return amax_of_pair<T>(m2);
    } else {
      return m;
    }
  }
};

// dynamic_quant_grid_kernel's conversion, after the barrier: the register slabs, then the
// shared-memory ones while the first loads of the rest are in flight, then the rest from the
// end backward (what the amax walk read last first, while L2 holds it), each batch of loads
// issued before the previous batch is converted.
template <typename T, int VEC, bool FAST>
__device__ __forceinline__ void grid_stores(uint8_t* out, const uint4* in16,
                                            const uint4 (&xv)[kGridRegItems], const uint4* held_v,
                                            const Divider& d, int nvec, int first, int held,
                                            int slab, uint64_t drop) {
  namespace sc = stablekernels::cuda;
  const auto store = [&](int j, const uint4& w) {
    if (j < nvec) {
      store_quantized<T, VEC, FAST>(out + static_cast<int64_t>(j) * VEC, as_vec<T, VEC>(w), d);
    }
  };
#pragma unroll
  for (int i = 0; i < kGridRegItems; ++i) {
    store(first + i * slab, xv[i]);
  }
  const int held_first = first + kGridRegItems * slab;
  const int rest_first = held_first + held * slab;
  // slab k of the rest (k >= 0, vector inside the input), else zeros
  const auto load_rest = [&](int k) {
    const int j = rest_first + k * slab;
    return k >= 0 && j < nvec ? sc::load16_l2(in16 + j, drop) : make_uint4(0, 0, 0, 0);
  };
  int k0 = rest_first < nvec ? (nvec - rest_first + slab - 1) / slab - 1 : -1;
  uint4 v[kFlatUnroll];
#pragma unroll
  for (int u = 0; u < kFlatUnroll; ++u) {
    v[u] = load_rest(k0 - u);
  }
  for (int i = 0; i < held; ++i) {
    store(held_first + i * slab, held_v[i * kGridThreads]);
  }
  for (; k0 >= 0; k0 -= kFlatUnroll) {
    uint4 next[kFlatUnroll];
#pragma unroll
    for (int u = 0; u < kFlatUnroll; ++u) {
      next[u] = load_rest(k0 - kFlatUnroll - u);
    }
#pragma unroll
    for (int u = 0; u < kFlatUnroll; ++u) {
      if (k0 - u >= 0) {
        store(rest_first + (k0 - u) * slab, v[u]);
      }
      v[u] = next[u];
    }
  }
}

template <typename T, int VEC>
__global__ void __launch_bounds__(kGridThreads, 1)
    dynamic_quant_grid_kernel(uint8_t* out, float* scale, GridSync* sync, const T* in, int nvec,
                              int held, int keep_from) {
  static_assert(sizeof(Vec<T, VEC>) == 16, "16-byte vectors");
  stablekernels::cuda::pdl_enter();
  namespace sc = stablekernels::cuda;
  extern __shared__ uint4 grid_held[];
  __shared__ float block_scale;
  const uint4* in16 = reinterpret_cast<const uint4*>(in);
  const int slab = static_cast<int>(gridDim.x) * kGridThreads;
  const int first = static_cast<int>(blockIdx.x) * kGridThreads + static_cast<int>(threadIdx.x);
  const uint64_t drop = sc::l2_policy<sc::Evict::kFirst>();
  uint4 xv[kGridRegItems];
#pragma unroll
  for (int i = 0; i < kGridRegItems; ++i) {
    const int j = first + i * slab;
    xv[i] = j < nvec ? sc::load16_l2(in16 + j, drop) : make_uint4(0, 0, 0, 0);
  }
  // The shared-memory slabs: 16-bit inputs copy them by cp.async ahead of the rest; float32
  // ones load them with the rest, 4 at a time, and store them (each thread writes and later
  // reads only its own vectors there). Those orders measured faster for each.
  constexpr bool kCopyHeld = sizeof(T) == 2;
  const int held_first = first + kGridRegItems * slab;
  const int rest_first = held_first + held * slab;
  if constexpr (kCopyHeld) {
    for (int i = 0; i < held; ++i) {
      const int j = held_first + i * slab;
      if (j < nvec) {
        copy_async16_l2(&grid_held[i * kGridThreads + threadIdx.x], in16 + j, drop);
      }
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  }
  GridAmax<T> a;
  {
    const uint64_t keep = sc::l2_policy<sc::Evict::kLast>();
    const int loop_first = kCopyHeld ? rest_first : held_first;
    int i = 0;  // the loop's first slab's index past the register slabs (float32)
    for (int base = loop_first; base < nvec; base += slab * kFlatUnroll, i += kFlatUnroll) {
      uint4 v[kFlatUnroll];
#pragma unroll
      for (int u = 0; u < kFlatUnroll; ++u) {
        const int j = base + u * slab;
        const uint64_t pol = j >= rest_first && j >= keep_from ? keep : drop;
        v[u] = j < nvec ? sc::load16_l2(in16 + j, pol) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kFlatUnroll; ++u) {
        a.add(v[u]);
        if constexpr (!kCopyHeld) {
          if (i + u < held) {
            grid_held[(i + u) * kGridThreads + threadIdx.x] = v[u];
          }
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kGridRegItems; ++i) {
    a.add(xv[i]);
  }
  const uint4* held_v = grid_held + threadIdx.x;
  if constexpr (kCopyHeld) {
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    for (int i = 0; i < held; ++i) {
      if (held_first + i * slab < nvec) {
        a.add(held_v[i * kGridThreads]);
      }
    }
  }
  float m = a.value();
  m = block_max(m);
  if (m > FLT_MAX) {  // an inf: the maximum again with inf ignored (the same for the block)
    m = 0.0f;
#pragma unroll
    for (int i = 0; i < kGridRegItems; ++i) {
      m = vec_amax<T, VEC>(as_vec<T, VEC>(xv[i]), m);
    }
    for (int i = 0; i < held; ++i) {
      if (held_first + i * slab < nvec) {
        m = vec_amax<T, VEC>(as_vec<T, VEC>(held_v[i * kGridThreads]), m);
      }
    }
    for (int j = rest_first; j < nvec; j += slab) {
      m = vec_amax<T, VEC>(load_vec<T, VEC>(in + static_cast<int64_t>(j) * VEC), m);
    }
    m = block_max(m);
  }
  if (threadIdx.x == 0) {
    block_scale = grid_scale(sync, scale_from_amax(m));
  }
  __syncthreads();
  const Divider d = make_divider<T>(block_scale);
  if (first == 0) {
    *scale = d.s;
  }
  if (d.fast) {
    grid_stores<T, VEC, true>(out, in16, xv, held_v, d, nvec, first, held, slab, drop);
  } else {
    grid_stores<T, VEC, false>(out, in16, xv, held_v, d, nvec, first, held, slab, drop);
  }
}

// One block per row; the row slice (ITEMS vectors per thread) stays in registers. The max
// |x| counts inf (one instruction per element); a row with an inf takes it again over the
// registers with inf ignored (the branch is the same for the whole block). Rows: RowIndexer,
// or StridedRows where both tensors' rows are one (size, stride) pair (rows.h). EXACT (rows of
// exactly ITEMS x blockDim.x vectors, grid == rows): no bounds and no row loop, so a block's
// loads wait for nothing but the row's address (the first load 22 instructions in instead of
// 68), at most 64 registers (two blocks of 512 threads, eight of 128, an SM: unbounded it took
// 80, six blocks of 128). H200, us, two rounds, before / unbounded / at most 64 registers: bf16
// 4096 x 8192 25.9-26.0 / 25.7-25.9 / 25.1-25.2, 4096 x 4096 15.3 / 14.9-15.0 / 14.8, 16384 x
// 4096 48.1-48.2 / 46.7-46.8 / 47.2-47.3, 16384 x 8192 93.8 / 93.0-93.2 / 92.6-92.7; float32
// 4096 x 8192 42.2 / 41.1-41.2 / 40.9-41.0.
template <typename T, int VEC, int ITEMS, typename Rows, bool EXACT = false>
__global__ void __launch_bounds__(kRowKernelMaxThreads, EXACT ? 2 : 1)
    per_token_kernel(uint8_t* out, Rows out_rows, const T* in, Rows in_rows, float* scale,
                     int64_t scale_stride, const float* scale_ub, int64_t rows, int hidden) {
  stablekernels::cuda::pdl_enter();
  const int nvec = hidden / VEC;
  const float ub = scale_ub != nullptr ? *scale_ub : NAN;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + in_rows.offset(row);
    uint8_t* y = out + out_rows.offset(row);
    Vec<T, VEC> xv[ITEMS];
    const float m = load_slice_amax<T, VEC, ITEMS, EXACT>(x, nvec, xv, threadIdx.x, blockDim.x);
    const Divider d = make_divider<T>(row_scale(m, ub));
    if (threadIdx.x == 0) {
      scale[row * scale_stride] = d.s;
    }
    if (d.fast) {
      store_row<T, VEC, ITEMS, true, EXACT>(y, xv, nvec, d, threadIdx.x, blockDim.x);
    } else {
      store_row<T, VEC, ITEMS, false, EXACT>(y, xv, nvec, d, threadIdx.x, blockDim.x);
    }
    if constexpr (EXACT) {
      break;
    }
  }
}

// Rows longer than the register kernel holds: two passes over the row.
template <typename T, int VEC>
__global__ void __launch_bounds__(kGenericThreads)
    per_token_generic_kernel(uint8_t* out, RowIndexer out_rows, const T* in, RowIndexer in_rows,
                             float* scale, int64_t scale_stride, const float* scale_ub,
                             int64_t rows, int hidden) {
  stablekernels::cuda::pdl_enter();
  const int nvec = hidden / VEC;
  const float ub = scale_ub != nullptr ? *scale_ub : NAN;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + in_rows.offset(row);
    uint8_t* y = out + out_rows.offset(row);
    float m = 0.0f;
    for (int j = threadIdx.x; j < nvec; j += blockDim.x) {
      m = vec_amax<T, VEC>(load_vec<T, VEC>(x + static_cast<int64_t>(j) * VEC), m);
    }
    const Divider d = make_divider<T>(row_scale(block_max(m), ub));
    if (threadIdx.x == 0) {
      scale[row * scale_stride] = d.s;
    }
    for (int j = threadIdx.x; j < nvec; j += blockDim.x) {
      const int64_t off = static_cast<int64_t>(j) * VEC;
      store_quantized<T, VEC>(y + off, load_vec<T, VEC>(x + off), d);
    }
  }
}

}  // namespace stablekernels::quantization::cuda
