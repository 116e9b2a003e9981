// SPDX-License-Identifier: Apache-2.0
// Host check of the CUDA kernels' fast division (quantization_kernels.cuh, Divider): for
// 16-bit inputs x and the scales s the kernels take it for (bf16: [2^-64, 2^64]; fp16:
// [2^-64, 64), its clamp bound raised to 2^-24 where it is smaller), the fp8 bits of the fast
// sequence equal those of the IEEE division x / s. Not part of the wheel: the farm test
// ci/tests/test_quantization_fastdiv.py (nox -s farm_tests) compiles and runs it, or by hand:
//   g++ -O2 -mfma -ffp-contract=off -fopenmp -std=c++17 \
//     ci/tests/quantization_fastdiv_check.cpp -o /tmp/fastdiv && /tmp/fastdiv
// It prints one line per dtype, "<dtype>: <n> mismatches (A: <pairs> pairs, B: <pairs> pairs)",
// and exits with 1 if any pair mismatched. The sweeps are exhaustive on purpose (about a
// minute on two cores): the proof is that every pair was checked.
// Every float operation is emulated exactly (one IEEE rounding each, as FMUL / FFMA / HMNMX2
// do without flush to zero; __frcp_rn is the rounded 1 / s). Two sweeps per dtype:
//   A: every x mantissa (x in [1, 2)) against every scale mantissa (s in [1, 2)): away from
//      overflow and underflow the quotient's bits depend on the mantissas only, and there the
//      check asks for the same float bits;
//   B: every 16-bit x (all exponents, signs, zeros, subnormals, inf, NaN) against scales
//      m * 2^e for every e in [-64, 64] (fp16: [-64, 5]) and 67 mantissas m: saturation,
//      underflow, the clamp and the special values, checked at the fp8 level.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace {

float bits_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof(f));
  return f;
}
uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

float bf16_to_float(uint16_t h) {
  return bits_float(static_cast<uint32_t>(h) << 16);
}

float fp16_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  if (exp == 0x1F) {
    return bits_float(sign | 0x7F800000u | (man << 13));
  }
  const float mag = exp == 0
                        ? std::ldexp(static_cast<float>(man), -24)
                        : std::ldexp(static_cast<float>(man | 0x400u), static_cast<int>(exp) - 25);
  return bits_float(sign | float_bits(mag));
}

// The device sequence (Divider with fast == true; fp16: the clamp bound as its pairs hold it).
// The residual goes through a volatile: otherwise GCC (12, -O2) folds -fma(s, q0, -xc) into
// fma(-s, q0, xc), which is not the same for signed zeros (-0 / s came out +0 here, while the
// device keeps -0: test_nan_inf checks that on the GPU).
float fast_div(float x, float s, bool fp16) {
  const float r = 1.0f / s;
  float c = bits_float((float_bits(s) & 0x7F800000u) + (10u << 23));
  if (fp16) {
    c = std::fmax(c, 0x1p-24f);
  }
  const float xc = std::isnan(x) ? x : std::fmin(std::fmax(x, -c), c);
  const float q0 = xc * r;
  volatile float residual = std::fma(s, q0, -xc);
  const float e = residual;
  return std::fma(-e, r, q0);
}

// Same fp8 e4m3 bits (SATFINITE, NaN -> one NaN, round to nearest even) for a and b.
bool same_fp8(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) {
    return std::isnan(a) && std::isnan(b);
  }
  if (std::signbit(a) != std::signbit(b)) {
    return false;
  }
  const float fa = std::fabs(a), fb = std::fabs(b);
  if (fa >= 448.0f || fb >= 448.0f) {
    return fa >= 448.0f && fb >= 448.0f;
  }
  // at or below half the smallest subnormal (2^-10) both round to a signed zero
  if (fa <= 0x1p-10f || fb <= 0x1p-10f) {
    return fa <= 0x1p-10f && fb <= 0x1p-10f;
  }
  return float_bits(a) == float_bits(b);
}

// The pairs each sweep checked are counted as the loops run (not computed from the bounds), so
// the summary shows that the sweeps were complete.
template <typename ToFloat>
long long sweep(const char* name, ToFloat to_float, int man_bits, bool fp16) {
  long long bad = 0, pairs_a = 0, pairs_b = 0;
  // A
  const int nman = 1 << man_bits;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : bad, pairs_a)
  for (int xm = 0; xm < nman; ++xm) {
    const float x = bits_float(0x3F800000u | (static_cast<uint32_t>(xm) << (23 - man_bits)));
    for (uint32_t sm = 0; sm < (1u << 23); ++sm) {
      const float s = bits_float(0x3F800000u | sm);
      const float q = fast_div(x, s, fp16), ref = x / s;
      if (float_bits(q) != float_bits(ref)) {
        if (bad++ < 10) {
          std::printf("%s A: x=%a s=%a fast=%a ref=%a\n", name, x, s, q, ref);
        }
      }
    }
    pairs_a += 1ll << 23;
  }
  // B
  std::vector<uint32_t> mans = {0u, 1u, 0x400000u, 0x7FFFFFu, 0x7FFFFEu, 0x600000u};
  std::mt19937 rng(12345);
  while (mans.size() < 67) {
    mans.push_back(rng() & 0x7FFFFFu);
  }
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : bad, pairs_b)
  for (int e = -64; e <= 64; ++e) {
    for (const uint32_t m : mans) {
      const float s = std::ldexp(bits_float(0x3F800000u | m), e);
      if (!(s >= 0x1p-64f && (fp16 ? s < 64.0f : s <= 0x1p64f))) {
        continue;  // the kernels divide
      }
      for (uint32_t h = 0; h < 65536; ++h) {
        const float x = to_float(static_cast<uint16_t>(h));
        const float q = fast_div(x, s, fp16), ref = x / s;
        if (!same_fp8(q, ref)) {
          if (bad++ < 10) {
            std::printf("%s B: x=%a s=%a fast=%a ref=%a\n", name, x, s, q, ref);
          }
        }
      }
      pairs_b += 65536;
    }
  }
  std::printf("%s: %lld mismatches (A: %lld pairs, B: %lld pairs)\n", name, bad, pairs_a, pairs_b);
  return bad;
}

}  // namespace

int main() {
  const long long bad =
      sweep("bf16", bf16_to_float, 7, false) + sweep("fp16", fp16_to_float, 10, true);
  return bad == 0 ? 0 : 1;
}
