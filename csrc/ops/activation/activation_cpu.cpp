// SPDX-License-Identifier: Apache-2.0
// CPU implementations of the activation family.

#include <torch/csrc/stable/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/activation/activation.h"
#include "ops/activation/activation_math.h"

namespace stablekernels::activation {
namespace {

// The CPU kernels work on chunks of a row converted to float32 and apply the activation
// over the chunk in a loop the compiler vectorizes. libm's expf / erff / tanhf are scalar
// calls, which kept these kernels at about 5 ns an element, slower than torch's vectorized
// eager ops; the fast forms of activation_math.h over the primitives below are branch-free
// float32 arithmetic instead, within a few ulp of the exact functions (the tests' float32
// tolerance is 1e-5).
constexpr int64_t kChunk = 256;

// The primitives of the fast forms on the CPU. div and rcp are IEEE divisions (one
// vdivps); fma is a multiply-add that the compiler fuses where the target has FMA.
struct CpuPrims {
  // 2^x: x = n + f with n = round(x), |f| <= 1/2 (f is exact), 2^f = e^(f ln 2) by Cephes'
  // degree-6 polynomial of expf (about 1 ulp), 2^n built in the exponent bits. Above 127
  // gives inf, below -126 gives 0 (the edge of the normal range), NaN stays NaN.
  static float exp2(float x) {
    const float xc = std::min(std::max(x, -126.0f), 127.0f);
    // round(xc) by the 1.5 * 2^23 trick (exact for |xc| < 2^22; no rounding call)
    const float n = (xc + 12582912.0f) - 12582912.0f;
    const float r = (xc - n) * 0.693147180559945309f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    float e = p * scale;
    e = x > 127.0f ? std::numeric_limits<float>::infinity() : e;
    e = x < -126.0f ? 0.0f : e;
    return x != x ? x : e;
  }
  static float div(float a, float b) { return a / b; }
  static float rcp(float x) { return 1.0f / x; }
  static float fma(float a, float b, float c) { return a * b + c; }
};

// y[0, n) = Act(x[0, n)) * g[0, n) for n <= kChunk elements of one row, in float32.
// Always inlined, so that each instantiation of act_and_mul_rows below compiles it (and
// the fast forms it calls) for that function's instruction set.
template <typename Act, typename T>
__attribute__((always_inline)) inline void act_and_mul_chunk(T* y, const T* x, const T* g,
                                                             int64_t n) {
  using A = FastAct<Act, CpuPrims>;
  float a[kChunk];
  float b[kChunk];
  for (int64_t i = 0; i < n; ++i) {
    a[i] = static_cast<float>(x[i]);
    b[i] = static_cast<float>(g[i]);
  }
  for (int64_t i = 0; i < n; ++i) {
    a[i] = A::apply(a[i]) * b[i];
  }
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<T>(a[i]);
  }
}

// Columns [col_begin, col_end) of rows [row_begin, row_end).
struct Block {
  int64_t row_begin, row_end, col_begin, col_end;
};

template <typename Act, typename T>
__attribute__((always_inline)) inline void act_and_mul_block(T* out, const RowIndexer& out_rows,
                                                             const T* in, const RowIndexer& in_rows,
                                                             int64_t d, const Block& blk) {
  for (int64_t r = blk.row_begin; r < blk.row_end; ++r) {
    const T* x = in + in_rows.offset(r);
    const T* g = x + d;
    T* y = out + out_rows.offset(r);
    for (int64_t j0 = blk.col_begin; j0 < blk.col_end; j0 += kChunk) {
      act_and_mul_chunk<Act>(y + j0, x + j0, g + j0, std::min(kChunk, blk.col_end - j0));
    }
  }
}

// The x86-64 baseline (SSE2) does 4 floats a step, without FMA; torch's own kernels pick
// AVX2 or AVX-512 at run time, which made float32 gelu_and_mul and decode-sized rows slower
// than eager. So the loops are also compiled for x86-64-v3 (AVX2 + FMA, 8 floats a step)
// and x86-64-v4 (AVX-512, 16), and the best one the CPU runs is taken; other architectures
// build the baseline only.
template <typename Act, typename T>
void act_and_mul_baseline(T* out, const RowIndexer& out_rows, const T* in,
                          const RowIndexer& in_rows, int64_t d, const Block& blk) {
  act_and_mul_block<Act>(out, out_rows, in, in_rows, d, blk);
}

#if defined(__x86_64__)
template <typename Act, typename T>
__attribute__((target("avx2,fma"))) void act_and_mul_avx2(T* out, const RowIndexer& out_rows,
                                                          const T* in, const RowIndexer& in_rows,
                                                          int64_t d, const Block& blk) {
  act_and_mul_block<Act>(out, out_rows, in, in_rows, d, blk);
}

template <typename Act, typename T>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))) void act_and_mul_avx512(
    T* out, const RowIndexer& out_rows, const T* in, const RowIndexer& in_rows, int64_t d,
    const Block& blk) {
  act_and_mul_block<Act>(out, out_rows, in, in_rows, d, blk);
}

#endif

enum class Isa { kBaseline, kAvx2, kAvx512 };

// STABLEKERNELS_CPU_CAPABILITY caps the pick, as ATEN_CPU_CAPABILITY does torch's: "default"
// (the baseline), "avx2" or "avx512" (the default: no cap); an ISA the CPU lacks is never
// taken. It lets the tests run every build on one machine. Read on the first call of an op
// (an unknown value fails that call, and the next reads it again).
Isa capability_cap(const char* op) {
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

// Asked of the CPU and the environment once.
Isa cpu_isa(const char* op) {
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

template <typename Act, typename T>
void act_and_mul_run(Isa isa, T* out, const RowIndexer& out_rows, const T* in,
                     const RowIndexer& in_rows, int64_t d, const Block& blk) {
#if defined(__x86_64__)
  switch (isa) {
    case Isa::kAvx512: act_and_mul_avx512<Act>(out, out_rows, in, in_rows, d, blk); return;
    case Isa::kAvx2: act_and_mul_avx2<Act>(out, out_rows, in, in_rows, d, blk); return;
    case Isa::kBaseline: break;
  }
#else
  (void)isa;
#endif
  act_and_mul_baseline<Act>(out, out_rows, in, in_rows, d, blk);
}

template <typename Act>
void act_and_mul_cpu(const char* op, const Tensor& result, const Tensor& input) {
  const ActProblem p = check_act_and_mul(op, result, input);
  if (p.rows == 0 || p.d == 0) {
    return;
  }
  const RowIndexer out_rows = row_indexer(op, {result, "result"});
  const RowIndexer in_rows = row_indexer(op, {input, "input"});
  const Isa isa = cpu_isa(op);
  dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
    using T = decltype(tag);
    T* out = static_cast<T*>(result.data_ptr());
    const T* in = static_cast<const T*>(input.data_ptr());
    // a column of the result reads two input elements; long rows go in pieces over the threads
    parallel_row_pieces(p.rows, p.d, 2, [&](int64_t r, int64_t begin, int64_t end) {
      act_and_mul_run<Act>(isa, out, out_rows, in, in_rows, p.d, Block{r, r + 1, begin, end});
    });
  });
}

void silu_and_mul_cpu(const Tensor& result, const Tensor& input) {
  act_and_mul_cpu<Silu>("silu_and_mul", result, input);
}
void gelu_and_mul_cpu(const Tensor& result, const Tensor& input) {
  act_and_mul_cpu<Gelu>("gelu_and_mul", result, input);
}
void gelu_tanh_and_mul_cpu(const Tensor& result, const Tensor& input) {
  act_and_mul_cpu<GeluTanh>("gelu_tanh_and_mul", result, input);
}

}  // namespace
}  // namespace stablekernels::activation

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("silu_and_mul", TORCH_BOX(&stablekernels::activation::silu_and_mul_cpu));
  m.impl("gelu_and_mul", TORCH_BOX(&stablekernels::activation::gelu_and_mul_cpu));
  m.impl("gelu_tanh_and_mul", TORCH_BOX(&stablekernels::activation::gelu_tanh_and_mul_cpu));
}
