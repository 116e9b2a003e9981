// SPDX-License-Identifier: Apache-2.0
// CPU implementation of the sampling family.

#include <torch/csrc/stable/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/sampling/sampling.h"
#include "ops/sampling/sampling_math.h"

namespace stablekernels::sampling {
namespace {

// The logits are walked as their storage bits U, converted to float32 and back by Bits<T>
// exactly as T's own conversions do (bf16: shift in, round to nearest even with NaN -> 0x7FC0
// out), so that the loop of penalize_span is plain integer and float arithmetic.
template <typename T>
struct Bits;
template <>
struct Bits<float> {
  using U = uint32_t;
  static float to_float(U b) {
    float f;
    std::memcpy(&f, &b, sizeof(f));
    return f;
  }
  static U from_float(float f) {
    U b;
    std::memcpy(&b, &f, sizeof(b));
    return b;
  }
};
template <>
struct Bits<torch::headeronly::BFloat16> {
  using U = uint16_t;
  static float to_float(U b) { return Bits<float>::to_float(static_cast<uint32_t>(b) << 16); }
  static U from_float(float f) {
    const uint32_t u = Bits<float>::from_float(f);
    const auto rounded = static_cast<U>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    return f != f ? U{0x7FC0} : rounded;
  }
};
template <>
struct Bits<torch::headeronly::Half> {
  using U = uint16_t;
  static float to_float(U b) {
    torch::headeronly::Half h;
    h.x = b;
    return static_cast<float>(h);
  }
  static U from_float(float f) { return torch::headeronly::Half(f).x; }
};

// penalize() on the elements [0, n) of a row whose prompt or output mask byte is set. The loop
// is branch-free so that GCC vectorizes it (SSE2: 4 or 8 elements a step): both x / pen and
// x * pen are computed and one selected (penalize's rule), and every element is stored, the
// unmasked ones with the bits they were read with. The division stays a division: divps is
// as exact as the scalar one, and SSE2 has no FMA for the reciprocal-and-correction form of
// the CUDA kernel.
template <typename T>
void penalize_span(typename Bits<T>::U* x, const uint8_t* pm, const uint8_t* om, int64_t n,
                   float pen) {
  using U = typename Bits<T>::U;
  for (int64_t j = 0; j < n; ++j) {
    const U b = x[j];
    const float v = Bits<T>::to_float(b);
    const float divided = v / pen;
    // x86 returns the first operand's NaN when both are NaN, and GCC orders the operands of
    // the vector multiply as it likes: a NaN logit keeps its own payload (quieted by v + v)
    // under a NaN penalty, as the scalar x * p did
    const float multiplied = v != v ? v + v : v * pen;
    const U penalized = Bits<T>::from_float(v > 0.0f ? divided : multiplied);
    x[j] = (pm[j] | om[j]) != 0 ? penalized : b;
  }
}

void apply_repetition_penalties_cpu(const Tensor& logits, const Tensor& prompt_mask,
                                    const Tensor& output_mask, const Tensor& repetition_penalties) {
  constexpr const char* op = "apply_repetition_penalties_";
  const PenaltyProblem p =
      check_apply_repetition_penalties(logits, prompt_mask, output_mask, repetition_penalties);
  if (p.rows == 0 || p.vocab == 0) {
    return;
  }
  const auto* prompt = static_cast<const uint8_t*>(prompt_mask.data_ptr());
  const auto* output = static_cast<const uint8_t*>(output_mask.data_ptr());
  dispatch_float_types(logits.scalar_type(), op, "logits", [&](auto tag) {
    using T = decltype(tag);
    auto* base = static_cast<typename Bits<T>::U*>(logits.data_ptr());
    const void* pen_data = repetition_penalties.data_ptr();
    const auto penalty = [&](int64_t r) {
      const int64_t i = r * p.penalty_stride;
      return p.float_penalties ? static_cast<const float*>(pen_data)[i]
                               : static_cast<float>(static_cast<const T*>(pen_data)[i]);
    };
    parallel_row_pieces(p.rows, p.vocab, 1, [&](int64_t r, int64_t begin, int64_t end) {
      penalize_span<T>(base + r * p.logits_stride + begin, prompt + r * p.prompt_stride + begin,
                       output + r * p.output_stride + begin, end - begin, penalty(r));
    });
  });
}

// Rows of at least this many columns find the k-th largest key by a radix select (below);
// shorter ones by std::nth_element over their keys.
constexpr int64_t kRadixMinLen = 2048;

// The k-th largest of the keys of row[0, len) (k < len), by a radix select over 11 + 11 + 10
// bits from the top: a histogram of the first digit over every key (four histograms, one per
// lane of four columns, so that runs of equal digits do not wait on one counter), the digit
// whose bucket holds the k-th largest, the keys of that bucket gathered, and so on. keys is
// scratch of len. Every loop is branch-free but the bucket walks. One Zen 5 core, 8192
// normal logits a row: 14.3-14.7 us a row at k = 64 and 2048, where the heap of k keys took
// 20 and std::nth_element 39-52 (both with the branch-free order_key).
uint32_t kth_largest_key(const float* row, int64_t len, int64_t k, uint32_t* keys) {
  constexpr int kLanes = 4;
  uint32_t first[kLanes][2048] = {};
  int64_t j = 0;
  for (; j + kLanes <= len; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const uint32_t key = order_key(row[j + l]);
      keys[j + l] = key;
      ++first[l][key >> 21];
    }
  }
  for (; j < len; ++j) {
    const uint32_t key = order_key(row[j]);
    keys[j] = key;
    ++first[0][key >> 21];
  }
  int64_t need = k;  // how many of the keys with the digits chosen so far to take, largest first
  uint32_t digit = 2047;
  for (;; --digit) {
    int64_t n = 0;
    for (int l = 0; l < kLanes; ++l) {
      n += first[l][digit];
    }
    if (n >= need) {
      break;
    }
    need -= n;
  }
  int64_t count = 0;
  for (int64_t i = 0; i < len; ++i) {
    const uint32_t key = keys[i];
    keys[count] = key;
    count += (key >> 21) == digit;
  }
  uint32_t prefix = digit << 21;
  uint32_t hist[2048];
  for (const int shift : {10, 0}) {
    const uint32_t mask = shift == 10 ? 2047u : 1023u;
    std::fill(hist, hist + 2048, 0u);
    for (int64_t i = 0; i < count; ++i) {
      ++hist[(keys[i] >> shift) & mask];
    }
    digit = mask;
    for (; hist[digit] < need; --digit) {
      need -= hist[digit];
    }
    prefix |= digit << shift;
    int64_t kept = 0;
    for (int64_t i = 0; i < count; ++i) {
      const uint32_t key = keys[i];
      keys[kept] = key;
      kept += ((key >> shift) & mask) == digit;
    }
    count = kept;
  }
  return prefix;
}

void top_k_per_row_cpu(const Tensor& logits, const Tensor& row_starts, const Tensor& row_ends,
                       const Tensor& indices, int64_t k) {
  const TopKProblem p = check_top_k_per_row(logits, row_starts, row_ends, indices, k);
  if (p.rows == 0) {
    return;
  }
  const auto* x = static_cast<const float*>(logits.data_ptr());
  const auto* starts = static_cast<const int32_t*>(row_starts.data_ptr());
  const auto* ends = static_cast<const int32_t*>(row_ends.data_ptr());
  auto* out = static_cast<int32_t*>(indices.data_ptr());
  // a row costs about as much as 8 elementwise passes over it: the threads split rows of
  // 4096 columns and more one by one
  parallel_rows(p.rows, 8 * std::max<int64_t>(p.cols, 1), [&](int64_t begin, int64_t end) {
    std::vector<uint32_t> keys;  // order keys of a row
    for (int64_t r = begin; r < end; ++r) {
      const ColumnRange range =
          clamp_range(starts[r * p.starts_stride], ends[r * p.ends_stride], p.cols);
      const int64_t len = range.end - range.start;
      int32_t* y = out + r * p.indices_stride;
      if (len <= p.k) {
        for (int64_t j = 0; j < p.k; ++j) {
          y[j] = j < len ? static_cast<int32_t>(range.start + j) : -1;
        }
        continue;
      }
      const float* row = x + r * p.logits_stride + range.start;
      // The key of the k-th largest element; fewer than k elements lie above it.
      keys.resize(static_cast<size_t>(len));
      uint32_t kth = 0;
      if (len >= kRadixMinLen) {
        kth = kth_largest_key(row, len, p.k, keys.data());
      } else {
        for (int64_t j = 0; j < len; ++j) {
          keys[static_cast<size_t>(j)] = order_key(row[j]);
        }
        std::nth_element(keys.begin(), keys.begin() + (p.k - 1), keys.end(),
                         [](uint32_t a, uint32_t b) { return a > b; });
        kth = keys[static_cast<size_t>(p.k - 1)];
      }
      // Branch-free: each column is written at y[above] and kept if above the k-th (fewer
      // than k are, so above < k at every write).
      int64_t above = 0;
      for (int64_t j = 0; j < len; ++j) {
        y[above] = static_cast<int32_t>(range.start + j);
        above += order_key(row[j]) > kth;
      }
      for (int64_t j = 0, pos = above; pos < p.k; ++j) {  // ties at the k-th value: the first ones
        if (order_key(row[j]) == kth) {
          y[pos++] = static_cast<int32_t>(range.start + j);
        }
      }
    }
  });
}

}  // namespace
}  // namespace stablekernels::sampling

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("apply_repetition_penalties_",
         TORCH_BOX(&stablekernels::sampling::apply_repetition_penalties_cpu));
  m.impl("top_k_per_row", TORCH_BOX(&stablekernels::sampling::top_k_per_row_cpu));
}
