// SPDX-License-Identifier: Apache-2.0
#pragma once
// The x86-64 instruction set a CPU kernel runs: CPU kernels whose loops vectorize are
// compiled for the baseline (SSE2, 4 floats a step, no FMA), x86-64-v3 (AVX2 + FMA, 8) and
// x86-64-v4 (AVX-512, 16) with __attribute__((target)), and the best one the CPU runs is
// taken, as torch's own kernels pick theirs at run time; other architectures build the
// baseline only.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/checks.h"

namespace stablekernels {

enum class Isa { kBaseline, kAvx2, kAvx512 };

// The target attributes of the AVX2 and AVX-512 builds.
#define STABLEKERNELS_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define STABLEKERNELS_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))

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
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
      best = Isa::kAvx512;
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      best = Isa::kAvx2;
    }
#endif
    return std::min(best, cap);
  }();
  return isa;
}

// Calls the build of `isa` of a function defined three times as fn_baseline, fn_avx2 and
// fn_avx512 (those two with the target attributes above; other architectures define and
// call fn_baseline only): STABLEKERNELS_BY_ISA(isa, fn, targs, args...) is
// fn_<isa>targs(args...), targs being explicit template arguments (`<Act>`) or empty.
#if defined(__x86_64__)
#define STABLEKERNELS_BY_ISA(isa, fn, targs, ...)                          \
  ((isa) == ::stablekernels::Isa::kAvx512 ? fn##_avx512 targs(__VA_ARGS__) \
   : (isa) == ::stablekernels::Isa::kAvx2 ? fn##_avx2 targs(__VA_ARGS__)   \
                                          : fn##_baseline targs(__VA_ARGS__))
#else
#define STABLEKERNELS_BY_ISA(isa, fn, targs, ...) ((void)(isa), fn##_baseline targs(__VA_ARGS__))
#endif

// a[0, m) = x[0, m) and b[0, m) = y[0, m) as float32: the widening loop of a chunk of two
// rows, which the chunked CPU loops run before their arithmetic (always inlined, so that
// each instruction-set build compiles it for itself).
template <typename T>
__attribute__((always_inline)) inline void widen_two(float* a, float* b, const T* x, const T* y,
                                                     int64_t m) {
  for (int64_t i = 0; i < m; ++i) {
    a[i] = static_cast<float>(x[i]);
    b[i] = static_cast<float>(y[i]);
  }
}

}  // namespace stablekernels
