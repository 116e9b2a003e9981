// SPDX-License-Identifier: Apache-2.0
#pragma once
// The x86-64 instruction set a CPU kernel runs: CPU kernels whose loops vectorize are
// compiled for the baseline (SSE2, 4 floats a step, no FMA), x86-64-v3 (AVX2 + FMA + F16C, 8)
// and x86-64-v4 (AVX-512, 16) with __attribute__((target)), and the best one the CPU runs is
// taken, as torch's own kernels pick theirs at run time; other architectures build the
// baseline only.

#include <torch/headeronly/util/Half.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/checks.h"

namespace stablekernels {

enum class Isa { kBaseline, kAvx2, kAvx512 };

// The target attributes of the AVX2 and AVX-512 builds (F16C, the float16 conversions, came
// before AVX2 on every x86-64 CPU).
#define STABLEKERNELS_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define STABLEKERNELS_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))

// The build a function body is compiled for, as a type: the first argument of the bodies that
// STABLEKERNELS_ISA_BUILDS makes builds of.
template <Isa I>
using IsaTag = std::integral_constant<Isa, I>;

// STABLEKERNELS_CPU_CAPABILITY caps the pick, as ATEN_CPU_CAPABILITY does torch's: "default"
// (the baseline), "avx2" or "avx512" (the default: no cap); an ISA the CPU lacks is never
// taken. It lets the tests run every build on one machine. Read on the first call of an op
// (an unknown value fails that call, and the next reads it again).
inline Isa capability_cap(const char* op) {
  const char* v = std::getenv("STABLEKERNELS_CPU_CAPABILITY");
  const std::string s = v == nullptr ? "" : v;
  if (s.empty() || s == "avx512") {
    return Isa::kAvx512;
  }
  if (s == "avx2") {
    return Isa::kAvx2;
  }
  STABLEKERNELS_CHECK(s == "default", op, "STABLEKERNELS_CPU_CAPABILITY='", s,
                      "': expected default, avx2 or avx512 (or unset)");
  return Isa::kBaseline;
}

// Asked of the CPU and the environment once a process.
inline Isa cpu_isa(const char* op) {
  static const Isa isa = [op] {
    const Isa cap = capability_cap(op);
    Isa best = Isa::kBaseline;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("f16c")) {
      best = Isa::kAvx512;
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c")) {
      best = Isa::kAvx2;
    }
#endif
    return std::min(best, cap);
  }();
  return isa;
}

// Calls the build of `isa` of fn (STABLEKERNELS_ISA_BUILDS below): fn_<isa>(args...).
#if defined(__x86_64__)
#define STABLEKERNELS_BY_ISA(isa, fn, ...)                           \
  ((isa) == ::stablekernels::Isa::kAvx512 ? fn##_avx512(__VA_ARGS__) \
   : (isa) == ::stablekernels::Isa::kAvx2 ? fn##_avx2(__VA_ARGS__)   \
                                          : fn##_baseline(__VA_ARGS__))
#else
#define STABLEKERNELS_BY_ISA(isa, fn, ...) ((void)(isa), fn##_baseline(__VA_ARGS__))
#endif

// fn_baseline, fn_avx2 and fn_avx512 (x86-64; elsewhere fn_baseline only), each calling
// body(IsaTag<its Isa>{}, its arguments...): body is an always-inlined function (template), so
// each build compiles it, and what it calls, for its own instruction set, and the tag tells it
// which set that is.
#define STABLEKERNELS_ISA_BUILD_(fn, body, isa, attr)                 \
  template <typename... Args>                                         \
  attr decltype(auto) fn(Args&&... args) {                            \
    return body(::stablekernels::IsaTag<::stablekernels::Isa::isa>{}, \
                std::forward<Args>(args)...);                         \
  }
#if defined(__x86_64__)
#define STABLEKERNELS_ISA_BUILDS(fn, body)                                    \
  STABLEKERNELS_ISA_BUILD_(fn##_baseline, body, kBaseline, )                  \
  STABLEKERNELS_ISA_BUILD_(fn##_avx2, body, kAvx2, STABLEKERNELS_TARGET_AVX2) \
  STABLEKERNELS_ISA_BUILD_(fn##_avx512, body, kAvx512, STABLEKERNELS_TARGET_AVX512)
#else
#define STABLEKERNELS_ISA_BUILDS(fn, body) \
  STABLEKERNELS_ISA_BUILD_(fn##_baseline, body, kBaseline, )
#endif

#if defined(__x86_64__)
// float16 <-> float32 by F16C, 8 elements an instruction, rounding to nearest even as torch's
// Half does. Torch's conversion, integer operations one element at a time, vectorizes only
// partly: 0.3-3.5 ns an element in a widen / scale / narrow loop against 0.11 here (one Zen 5
// core). Not always_inline (GCC refuses to force a target function into the generic widen /
// narrow templates before they are inlined into a build); called once a chunk, where GCC
// does not inline them.
__attribute__((target("avx2,fma,f16c"))) inline void widen_f16c(float* a, const uint16_t* x,
                                                                int64_t m) {
  int64_t i = 0;
  for (; i + 8 <= m; i += 8) {
    _mm256_storeu_ps(a + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  }
  for (; i < m; ++i) {
    a[i] = _cvtsh_ss(x[i]);
  }
}

__attribute__((target("avx2,fma,f16c"))) inline void narrow_f16c(uint16_t* y, const float* a,
                                                                 int64_t m) {
  int64_t i = 0;
  for (; i + 8 <= m; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(a + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < m; ++i) {
    y[i] = _cvtss_sh(a[i], _MM_FROUND_TO_NEAREST_INT);
  }
}
#endif

// a[0, m) = x[0, m) as float32: the widening loop of the chunked CPU loops (float16 by F16C
// in the AVX2 and AVX-512 builds).
template <Isa I, typename T>
__attribute__((always_inline)) inline void widen(IsaTag<I>, float* a, const T* x, int64_t m) {
#if defined(__x86_64__)
  if constexpr (I != Isa::kBaseline && std::is_same_v<T, torch::headeronly::Half>) {
    widen_f16c(a, reinterpret_cast<const uint16_t*>(x), m);
    return;
  }
#endif
  for (int64_t i = 0; i < m; ++i) {
    a[i] = static_cast<float>(x[i]);
  }
}

// y[0, m) = a[0, m) rounded to T: the narrowing loop of the chunked CPU loops.
template <Isa I, typename T>
__attribute__((always_inline)) inline void narrow(IsaTag<I>, T* y, const float* a, int64_t m) {
#if defined(__x86_64__)
  if constexpr (I != Isa::kBaseline && std::is_same_v<T, torch::headeronly::Half>) {
    narrow_f16c(reinterpret_cast<uint16_t*>(y), a, m);
    return;
  }
#endif
  for (int64_t i = 0; i < m; ++i) {
    y[i] = static_cast<T>(a[i]);
  }
}

// a[0, m) = x[0, m) and b[0, m) = y[0, m) as float32: a chunk of two rows.
template <Isa I, typename T>
__attribute__((always_inline)) inline void widen_two(IsaTag<I> isa, float* a, float* b, const T* x,
                                                     const T* y, int64_t m) {
  widen(isa, a, x, m);
  widen(isa, b, y, m);
}

// The elements a chunked CPU loop converts at a time: two float32 arrays of them on the stack.
constexpr int64_t kCpuChunk = 256;

// No work after a chunk (map_two's default).
struct NoChunkWork {
  void operator()(int64_t, int64_t) const {}
};

// y[0, n) = f(x[i], g[i]) computed in float32 and rounded to T: float32 rows in one loop
// straight from and to memory, 16-bit rows in chunks of kCpuChunk widened into float32
// arrays first and rounded back after, one loop each, so that each loop vectorizes (one loop
// converting element by element inside the arithmetic did not: float16 rms_norm took 20x
// longer). after(begin, m) runs once y[begin, begin + m) is stored (each chunk while it is in
// L1; the whole row for float32). y may be x or g. f and after are inlined (lambdas).
template <Isa I, typename T, typename F, typename After = NoChunkWork>
__attribute__((always_inline)) inline void map_two(IsaTag<I> isa, T* y, const T* x, const T* g,
                                                   int64_t n, const F& f,
                                                   const After& after = After{}) {
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t i = 0; i < n; ++i) {
      y[i] = f(x[i], g[i]);
    }
    after(int64_t{0}, n);
  } else {
    float a[kCpuChunk];
    float b[kCpuChunk];
    for (int64_t j0 = 0; j0 < n; j0 += kCpuChunk) {
      const int64_t m = std::min(kCpuChunk, n - j0);
      widen_two(isa, a, b, x + j0, g + j0, m);
      for (int64_t i = 0; i < m; ++i) {
        a[i] = f(a[i], b[i]);
      }
      narrow(isa, y + j0, a, m);
      after(j0, m);
    }
  }
}

}  // namespace stablekernels
