// SPDX-License-Identifier: Apache-2.0
// Host check of fp8_e4m3_bits (csrc/ops/quantization/quantization_math.h), the branch-free
// float32 -> float8_e4m3fn conversion of the CPU quantizers: for every one of the 2^32
// float32 bit patterns it gives the bits of the reference below, which knows nothing of
// float bit tricks: |q| saturated to 448, then the nearest of the 127 finite non-negative
// e4m3 values (listed from their definition, in double), ties to the even encoding; the
// sign bit of q; every NaN to 0x7F. Not part of the wheel: the farm test
// ci/tests/test_fp8_convert.py (nox -s farm_tests) compiles and runs it, or by hand:
//   g++ -O2 -fopenmp -std=c++17 -Icsrc -Icsrc/include ci/tests/fp8_convert_check.cpp \
//     -o /tmp/fp8_convert && /tmp/fp8_convert
// It prints "<n> mismatches of <count> floats" and exits with 1 if any mismatched.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "ops/quantization/quantization_math.h"

namespace {

using stablekernels::quantization::fp8_e4m3_bits;

// The value of the non-negative e4m3 encoding b (0 to 0x7E): subnormals k * 2^-9, normals
// (1 + m / 8) * 2^(e - 7).
double e4m3_value(int b) {
  const int e = b >> 3, m = b & 7;
  return e == 0 ? std::ldexp(m, -9) : std::ldexp(1.0 + m / 8.0, e - 7);
}

double kValues[127];

uint8_t reference(float q) {
  if (std::isnan(q)) {
    return 0x7F;
  }
  const double a = std::fmin(std::fabs(static_cast<double>(q)), 448.0);
  // the first encoding whose value is >= a, then the nearer of it and the one below
  int lo = 0, hi = 126;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (kValues[mid] < a) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  int b = lo;
  if (b > 0) {
    const double up = kValues[b] - a, down = a - kValues[b - 1];
    if (down < up || (down == up && ((b - 1) & 1) == 0)) {
      b = b - 1;
    }
  }
  return static_cast<uint8_t>(b | (std::signbit(q) ? 0x80 : 0));
}

}  // namespace

int main() {
  for (int b = 0; b < 127; ++b) {
    kValues[b] = e4m3_value(b);
  }
  long long bad = 0, count = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad, count)
  for (long long i = 0; i < (1LL << 32); ++i) {
    const uint32_t u = static_cast<uint32_t>(i);
    float q;
    std::memcpy(&q, &u, sizeof(q));
    const uint8_t want = reference(q), got = fp8_e4m3_bits(q);
    if (want != got) {
      if (bad < 8) {
#pragma omp critical
        std::printf("0x%08x (%g): expected 0x%02x, got 0x%02x\n", u, q, want, got);
      }
      ++bad;
    }
    ++count;
  }
  std::printf("%lld mismatches of %lld floats\n", bad, count);
  return bad == 0 ? 0 : 1;
}
