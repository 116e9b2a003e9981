// SPDX-License-Identifier: Apache-2.0
#pragma once
// dtype dispatch: calls f(tag) with a value of the element type, so the caller
// writes `using T = decltype(tag);`. A plain switch instead of THO_DISPATCH_* so
// the error names the argument, and kernel launches inside the lambda need no
// macro-safe commas.

#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include "core/checks.h"

namespace stablekernels {

template <typename F>
void dispatch_float_types(ScalarType t, const char* op, const char* arg, F&& f) {
  switch (t) {
    case ScalarType::Float: f(float{}); return;
    case ScalarType::Half: f(torch::headeronly::Half{}); return;
    case ScalarType::BFloat16: f(torch::headeronly::BFloat16{}); return;
    default:
      fail(op, "'", arg, "' must have dtype float32, float16 or bfloat16, got ", dtype_name(t));
  }
}

}  // namespace stablekernels
