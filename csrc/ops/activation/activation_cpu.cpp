// SPDX-License-Identifier: Apache-2.0
// CPU implementations of the activation family.

#include <torch/csrc/stable/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/cpu_isa.h"
#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/activation/activation.h"
#include "ops/activation/activation_math.h"

namespace stablekernels::activation {
namespace {

// The CPU kernels apply the activation to a row in float32, in a loop the compiler
// vectorizes: float32 rows straight from and to memory, 16-bit rows in chunks converted to
// float32 on the stack first. libm's expf / erff / tanhf are scalar calls, which kept these
// kernels at about 5 ns an element, slower than torch's vectorized eager ops; the activations
// are branch-free float32 arithmetic instead (vectorized only where a comparison may not trap:
// the CPU sources are compiled with -fno-trapping-math, cmake/stablekernels_utils.cmake): silu and
// gelu_tanh are the fast forms of activation_math.h over CpuPrims below, gelu is GeluCpu. Their
// relative error is about 1e-6 at most for |x| < 4 and larger in the negative tails, where the
// results are small (the tests' float32 tolerance is atol = rtol = 1e-5).

// The bits of a float32 and back (memcpy: no aliasing questions, and no code once compiled).
__attribute__((always_inline)) inline uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}

__attribute__((always_inline)) inline float bits_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
}

// The primitives of the fast forms (silu and gelu_tanh here) on the CPU. div and rcp are IEEE
// divisions (one vdivps); fma is a multiply-add that the compiler fuses where the target has
// FMA.
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
    float e = p * bits_float(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23);
    e = x > 127.0f ? std::numeric_limits<float>::infinity() : e;
    e = x < -126.0f ? 0.0f : e;
    return x != x ? x : e;
  }
  static float div(float a, float b) { return a / b; }
  static float rcp(float x) { return 1.0f / x; }
  static float fma(float a, float b, float c) { return a * b + c; }
};

// torch.nn.functional.gelu(x, approximate="none") for the CPU kernels, in float32:
//   gelu(x) = x Phi(x) = relu(x) - |x| q,   q = erfc(|x| / sqrt 2) / 2 = t e^(-x^2 / 2) R(t),
// t = 1 / (1 + p |x|), p = 0.35, R a degree-8 polynomial fitted to erfc(z) e^(z^2) / (2t) over
// |x| in [0, 13.25] (weighted least squares, Lawson's iteration: relative error 3.2e-8). q is
// Phi(x) for x <= 0 and 1 - Phi(x) for x > 0, so both tails keep their relative accuracy.
//
// Not Gelu::fast (kept for the CUDA kernels): its erfc(z) = t 2^(-z^2 log2 e + P(t)), with
// a 10-term P, is one chain of about 30 dependent operations (the division, P by Horner's
// rule, then the exponential), too long for the out-of-order core to overlap enough elements:
// 0.9-1.0 ns an element on one Zen 5 core with AVX-512 (torch's eager gelu: 0.25-0.3, its erf
// an Abramowitz-Stegun fit whose exponential does not wait for its polynomial). Here
// e^(-x^2 / 2) does not depend on t and runs beside the division and R(t) (Estrin's scheme),
// and the exponential only sees arguments in [-126.7, 0], so it needs no overflow, NaN or
// range selects: 0.3 ns an element. The relative error is at most 5e-7 for |x| < 2 and grows
// in the negative tail with the rounding of x^2 (as with Gelu::fast): 6e-6 at x = -11, 8e-6
// without FMA (tests/test_cpu_capability.py bounds it by 1e-6 + 1e-7 x^2).
//
// |x| and its clamp to 13.25 are integer operations on the bits (a NaN becomes 13.25 there,
// and relu passes the NaN on). Beyond 13.25, |x| q is below 2^-126 and taken as 0: gelu(x) =
// relu(x), so inf gives inf and -inf gives 0.
struct GeluCpu {
  __attribute__((always_inline)) static float apply(float x) {
    constexpr float kP = 0.35f;
    constexpr float c0 = 1.396216899e-01f;
    constexpr float c1 = 1.398571283e-01f;
    constexpr float c2 = 1.198660657e-01f;
    constexpr float c3 = 1.053807437e-01f;
    constexpr float c4 = -2.281720936e-02f;
    constexpr float c5 = 1.587594002e-01f;
    constexpr float c6 = -2.553591728e-01f;
    constexpr float c7 = 1.438032836e-01f;
    constexpr float c8 = -2.911195904e-02f;
    constexpr uint32_t kMaxAbs = 0x41540000u;  // 13.25f
    const uint32_t abs_bits = float_bits(x) & 0x7FFFFFFFu;
    const float xa = bits_float(abs_bits < kMaxAbs ? abs_bits : kMaxAbs);
    const float t = 1.0f / (xa * kP + 1.0f);
    const float t2 = t * t;
    const float t4 = t2 * t2;
    const float r01 = c1 * t + c0;
    const float r23 = c3 * t + c2;
    const float r45 = c5 * t + c4;
    const float r67 = c7 * t + c6;
    const float r = (r23 * t2 + r01) + ((c8 * t4 + (r67 * t2 + r45)) * t4);
    // e^(-x^2 / 2) = 2^a, a = -x^2 log2(e) / 2 in [-126.7, 0]: a = n + f with n = round(a) by
    // the 1.5 * 2^23 trick (m = 1.5 * 2^23 + n exactly, so the low bits of m are n's) and
    // |f| <= 1/2; 2^f by a degree-5 minimax polynomial (relative error 7.5e-8), 2^n by shifting
    // n into the exponent bits (n = -127 gives 0).
    const float a = xa * (xa * (-0.5f * kLog2e));
    const float m = a + 12582912.0f;
    const float f = a - (m - 12582912.0f);
    float e = 1.327646547e-03f;
    e = e * f + 9.675540961e-03f;
    e = e * f + 5.550713465e-02f;
    e = e * f + 2.402212024e-01f;
    e = e * f + 6.931469440e-01f;
    e = e * f + 1.000000119e+00f;
    e *= bits_float((float_bits(m) << 23) + (127u << 23));
    const float q = (t * e) * r;
    const float relu = x <= 0.0f ? 0.0f : x;
    return relu - xa * q;
  }
};

// The float32 form the CPU kernels compute for Act.
template <typename Act>
struct CpuAct {
  using type = FastAct<Act, CpuPrims>;
};
template <>
struct CpuAct<Gelu> {
  using type = GeluCpu;
};

// y[0, n) = Act(x[0, n)) * g[0, n) for n elements of one row, in float32 (map_two: float32
// rows in one loop, 16-bit rows in float32 chunks, one loop each way). Always inlined, so that each
// of act_and_mul_baseline / _avx2 / _avx512 below compiles it (and the forms it calls) for its own
// instruction set.
template <typename Act, Isa I, typename T>
__attribute__((always_inline)) inline void act_and_mul_row(IsaTag<I> isa, T* y, const T* x,
                                                           const T* g, int64_t n) {
  using A = typename CpuAct<Act>::type;
  // Staged through the stack like the 16-bit rows, float32 gelu took 0.45-0.54 ns an element
  // instead of 0.27-0.32 (one Zen 5 core, AVX-512), so map_two reads float32 rows in place.
  // (One loop for the 16-bit rows, converting in place, measured mixed: bfloat16 a little
  // faster, float16 slower.)
  map_two(isa, y, x, g, n, [](float v, float u) { return A::apply(v) * u; });
}

// Columns [col_begin, col_end) of rows [row_begin, row_end).
struct Block {
  int64_t row_begin, row_end, col_begin, col_end;
};

template <Isa I, typename Act, typename T>
__attribute__((always_inline)) inline void act_and_mul_block(IsaTag<I> isa, Act, T* out,
                                                             const RowIndexer& out_rows,
                                                             const T* in, const RowIndexer& in_rows,
                                                             int64_t d, const Block& blk) {
  for (int64_t r = blk.row_begin; r < blk.row_end; ++r) {
    const T* x = in + in_rows.offset(r);
    const T* g = x + d;
    T* y = out + out_rows.offset(r);
    act_and_mul_row<Act>(isa, y + blk.col_begin, x + blk.col_begin, g + blk.col_begin,
                         blk.col_end - blk.col_begin);
  }
}

// The x86-64 baseline (SSE2) does 4 floats a step, without FMA; torch's own kernels pick
// AVX2 or AVX-512 at run time, which made float32 gelu_and_mul and decode-sized rows slower
// than eager. So the loops are also compiled for AVX2 + FMA and AVX-512, and the best one
// the CPU runs is taken (core/cpu_isa.h).
STABLEKERNELS_ISA_BUILDS(act_and_mul, act_and_mul_block)

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
      STABLEKERNELS_BY_ISA(isa, act_and_mul, Act{}, out, out_rows, in, in_rows, p.d,
                           Block{r, r + 1, begin, end});
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
