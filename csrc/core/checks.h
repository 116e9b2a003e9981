// SPDX-License-Identifier: Apache-2.0
#pragma once
// Argument checks shared by every op. Each failure throws std::runtime_error,
// which reaches Python as RuntimeError, with a message that names the op, the
// argument and what was expected:
//   stablekernels.rms_norm: 'weight' must have dtype bfloat16 (the dtype of 'input'), got float32

#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "stablekernels/rows.h"

namespace stablekernels {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

template <typename... Args>
[[noreturn]] inline void fail(const char* op, const Args&... args) {
  std::ostringstream ss;
  ss << "stablekernels." << op << ": ";
  (ss << ... << args);
  throw std::runtime_error(ss.str());
}

#define STABLEKERNELS_CHECK(cond, op, ...)    \
  do {                                        \
    if (!(cond)) {                            \
      ::stablekernels::fail(op, __VA_ARGS__); \
    }                                         \
  } while (0)

// The name torch uses in Python (torch.float32, ...).
inline std::string dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Float: return "float32";
    case ScalarType::Double: return "float64";
    case ScalarType::Half: return "float16";
    case ScalarType::BFloat16: return "bfloat16";
    case ScalarType::Long: return "int64";
    case ScalarType::Int: return "int32";
    case ScalarType::Short: return "int16";
    case ScalarType::Char: return "int8";
    case ScalarType::Byte: return "uint8";
    case ScalarType::Bool: return "bool";
    case ScalarType::Float8_e4m3fn: return "float8_e4m3fn";
    case ScalarType::Float8_e5m2: return "float8_e5m2";
    default: return torch::headeronly::toString(t);
  }
}

inline std::string shape_str(const Tensor& t) {
  std::ostringstream ss;
  ss << "[";
  for (int64_t d = 0; d < t.dim(); ++d) {
    ss << (d ? ", " : "") << t.size(d);
  }
  ss << "]";
  return ss.str();
}

inline std::string device_str(const Tensor& t) {
  if (t.is_cpu()) {
    return "cpu";
  }
  if (t.is_cuda()) {
    return "cuda:" + std::to_string(t.get_device_index());
  }
  return "a non-CPU, non-CUDA device";
}

// A tensor argument with its schema name, for messages.
struct Arg {
  const Tensor& t;
  const char* name;
};

inline bool is_float_type(ScalarType t) {
  return t == ScalarType::Float || t == ScalarType::Half || t == ScalarType::BFloat16;
}

inline void check_float_dtype(const char* op, Arg a) {
  STABLEKERNELS_CHECK(is_float_type(a.t.scalar_type()), op, "'", a.name,
                      "' must have dtype float32, float16 or bfloat16, got ",
                      dtype_name(a.t.scalar_type()));
}

inline void check_dtype(const char* op, Arg a, ScalarType expected) {
  STABLEKERNELS_CHECK(a.t.scalar_type() == expected, op, "'", a.name, "' must have dtype ",
                      dtype_name(expected), ", got ", dtype_name(a.t.scalar_type()));
}

inline void check_same_dtype(const char* op, Arg a, Arg ref) {
  STABLEKERNELS_CHECK(a.t.scalar_type() == ref.t.scalar_type(), op, "'", a.name,
                      "' must have dtype ", dtype_name(ref.t.scalar_type()), " (the dtype of '",
                      ref.name, "'), got ", dtype_name(a.t.scalar_type()));
}

inline void check_same_device(const char* op, Arg a, Arg ref) {
  const bool same = a.t.is_cpu() == ref.t.is_cpu() && a.t.is_cuda() == ref.t.is_cuda() &&
                    (a.t.is_cpu() || a.t.get_device_index() == ref.t.get_device_index());
  STABLEKERNELS_CHECK(same, op, "'", a.name, "' must be on ", device_str(ref.t),
                      " (the device of '", ref.name, "'), got ", device_str(a.t));
}

inline void check_min_dim(const char* op, Arg a, int64_t min_dim) {
  STABLEKERNELS_CHECK(a.t.dim() >= min_dim, op, "'", a.name, "' must have at least ", min_dim,
                      " dimension", (min_dim == 1 ? "" : "s"), ", got shape ", shape_str(a.t));
}

inline void check_dim(const char* op, Arg a, int64_t dim) {
  STABLEKERNELS_CHECK(a.t.dim() == dim, op, "'", a.name, "' must have ", dim, " dimension",
                      (dim == 1 ? "" : "s"), ", got shape ", shape_str(a.t));
}

inline void check_same_shape(const char* op, Arg a, Arg ref) {
  bool same = a.t.dim() == ref.t.dim();
  for (int64_t d = 0; same && d < a.t.dim(); ++d) {
    same = a.t.size(d) == ref.t.size(d);
  }
  STABLEKERNELS_CHECK(same, op, "'", a.name, "' must have shape ", shape_str(ref.t),
                      " (the shape of '", ref.name, "'), got ", shape_str(a.t));
}

inline void check_last_dim_contiguous(const char* op, Arg a) {
  const int64_t last = a.t.dim() - 1;
  STABLEKERNELS_CHECK(a.t.size(last) <= 1 || a.t.stride(last) == 1, op, "'", a.name,
                      "' must be contiguous in its last dimension (stride 1), got strides ", [&] {
                        std::ostringstream ss;
                        ss << "[";
                        for (int64_t d = 0; d < a.t.dim(); ++d) {
                          ss << (d ? ", " : "") << a.t.stride(d);
                        }
                        ss << "]";
                        return ss.str();
                      }());
}

inline void check_finite_nonnegative(const char* op, const char* name, double v) {
  STABLEKERNELS_CHECK(std::isfinite(v) && v >= 0.0, op, "'", name,
                      "' must be a finite number >= 0, got ", v);
}

// The stride of dim `d`, or 0 when the dim has size 1 (torch may report any stride there).
inline int64_t stride_or_zero(const Tensor& t, int64_t d) {
  return t.size(d) == 1 ? 0 : t.stride(d);
}

// Collapses the leading dims (all but the last) of `a` into a RowIndexer.
inline RowIndexer row_indexer(const char* op, Arg a) {
  RowIndexer r;
  int n = 0;
  // Walk from the innermost leading dim outwards, merging dims whose strides chain.
  for (int64_t d = a.t.dim() - 2; d >= 0; --d) {
    const int64_t size = a.t.size(d);
    const int64_t stride = a.t.stride(d);
    if (size == 1) {
      continue;
    }
    if (n > 0 && stride == r.strides[0] * r.sizes[0]) {
      r.sizes[0] *= size;
      continue;
    }
    STABLEKERNELS_CHECK(n < kMaxRowDims, op, "'", a.name, "' has more than ", kMaxRowDims,
                        " leading dimensions that cannot be merged by their strides; "
                        "call .contiguous() on it first");
    // shift right: position 0 is the outermost dim seen so far
    for (int k = n; k > 0; --k) {
      r.sizes[k] = r.sizes[k - 1];
      r.strides[k] = r.strides[k - 1];
    }
    r.sizes[0] = size;
    r.strides[0] = stride;
    ++n;
  }
  if (n == 0) {
    r.ndim = 1;
    r.sizes[0] = 1;
    r.strides[0] = 0;
  } else {
    r.ndim = n;
  }
  return r;
}

// Number of rows: the product of the leading dims.
inline int64_t num_rows(const Tensor& t) {
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) {
    rows *= t.size(d);
  }
  return rows;
}

}  // namespace stablekernels
