// SPDX-License-Identifier: Apache-2.0
// Host check of FastDivU31 (csrc/include/stablekernels/rows.h), the division by a divisor
// fixed at launch that CUDA kernels use instead of an integer division: its host form
// computes the same multiply-high as __umulhi. Not part of the wheel: the farm test
// ci/tests/test_rows_fastdiv.py compiles and runs it, or by hand:
//   g++ -O2 -std=c++17 -Icsrc/include ci/tests/rows_fastdiv_check.cpp -o /tmp/f && /tmp/f
// A quotient can only be wrong where it changes, so every divisor is checked at the
// dividends around each multiple q * d (q * d - 1 and q * d) for q spread over the whole
// range, and at the ends 0 and 2^31 - 1: every divisor from 1 to 2^16 - 1, every power of
// two and its neighbours, and a million random divisors up to 2^31 - 1.
// Prints "<pairs> pairs, <n> mismatches" and exits with 1 on a mismatch.
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "stablekernels/rows.h"

namespace {

constexpr uint64_t kLimit = uint64_t{1} << 31;  // dividends are below 2^31

uint64_t pairs = 0;
uint64_t bad = 0;

void check(uint32_t d, uint64_t n, const stablekernels::FastDivU31& f) {
  if (n >= kLimit) {
    return;
  }
  ++pairs;
  const uint32_t got = f.div(static_cast<uint32_t>(n));
  if (got != n / d) {
    if (++bad <= 10) {
      std::printf("d=%u n=%llu: %u, expected %llu\n", d, static_cast<unsigned long long>(n), got,
                  static_cast<unsigned long long>(n / d));
    }
  }
}

void check_divisor(uint32_t d) {
  const stablekernels::FastDivU31 f(d);
  check(d, 0, f);
  check(d, kLimit - 1, f);
  const uint64_t qmax = (kLimit - 1) / d;
  // q = 1, 2, ... 64, then geometric steps of 1/16, then the last 64 multiples
  for (uint64_t q = 1; q <= qmax; q = q < 64 ? q + 1 : q + q / 16) {
    check(d, q * d - 1, f);
    check(d, q * d, f);
  }
  for (uint64_t q = qmax > 64 ? qmax - 64 : 1; q <= qmax; ++q) {
    check(d, q * d - 1, f);
    check(d, q * d, f);
    check(d, q * d + d - 1, f);
  }
}

}  // namespace

int main() {
  for (uint32_t d = 1; d < (1u << 16); ++d) {
    check_divisor(d);
  }
  for (int k = 16; k < 31; ++k) {
    for (const int64_t delta : {-1, 0, 1}) {
      check_divisor(static_cast<uint32_t>((int64_t{1} << k) + delta));
    }
  }
  check_divisor(static_cast<uint32_t>(kLimit - 1));
  std::mt19937 rng(20261121);
  std::uniform_int_distribution<uint32_t> dist(1u << 16, static_cast<uint32_t>(kLimit - 1));
  for (int i = 0; i < 1000000; ++i) {
    check_divisor(dist(rng));
  }
  std::printf("%llu pairs, %llu mismatches\n", static_cast<unsigned long long>(pairs),
              static_cast<unsigned long long>(bad));
  return bad == 0 ? 0 : 1;
}
