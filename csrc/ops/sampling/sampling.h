// SPDX-License-Identifier: Apache-2.0
#pragma once
// Argument checking shared by the CPU and CUDA implementations of the sampling family.

#include <cstdint>
#include <limits>

#include "core/checks.h"
#include "ops/sampling/sampling_math.h"

namespace stablekernels::sampling {

// A bool [rows, vocab] mask on the device of logits, last dim contiguous.
inline int64_t check_mask(const char* op, Arg m, const Tensor& logits) {
  const Arg l{logits, "logits"};
  check_same_device(op, m, l);
  check_dtype(op, m, ScalarType::Bool);
  check_same_shape(op, m, l);
  check_last_dim_contiguous(op, m);
  return stride_or_zero(m.t, 0);
}

// logits float [num_seqs, vocab], last dim contiguous; prompt_mask and output_mask bool of its
// shape; repetition_penalties [num_seqs], float32 or the dtype of logits (vLLM passes the
// latter). Rows of every operand may have any stride.
inline PenaltyProblem check_apply_repetition_penalties(const Tensor& logits,
                                                       const Tensor& prompt_mask,
                                                       const Tensor& output_mask,
                                                       const Tensor& repetition_penalties) {
  constexpr const char* op = "apply_repetition_penalties_";
  const Arg l{logits, "logits"};
  check_float_dtype(op, l);
  check_dim(op, l, 2);
  check_last_dim_contiguous(op, l);
  PenaltyProblem p;
  p.rows = logits.size(0);
  p.vocab = logits.size(1);
  p.logits_stride = stride_or_zero(logits, 0);
  p.prompt_stride = check_mask(op, {prompt_mask, "prompt_mask"}, logits);
  p.output_stride = check_mask(op, {output_mask, "output_mask"}, logits);
  const Arg rp{repetition_penalties, "repetition_penalties"};
  check_same_device(op, rp, l);
  const ScalarType pt = repetition_penalties.scalar_type();
  if (logits.scalar_type() == ScalarType::Float) {
    check_dtype(op, rp, ScalarType::Float);
  } else {
    STABLEKERNELS_CHECK(pt == ScalarType::Float || pt == logits.scalar_type(), op,
                        "'repetition_penalties' must have dtype float32 or ",
                        dtype_name(logits.scalar_type()), " (the dtype of 'logits'), got ",
                        dtype_name(pt));
  }
  p.float_penalties = pt == ScalarType::Float;
  STABLEKERNELS_CHECK(repetition_penalties.dim() == 1 && repetition_penalties.size(0) == p.rows, op,
                      "'repetition_penalties' must have shape [", p.rows,
                      "] ([num_seqs], num_seqs = the rows of 'logits'), got ",
                      shape_str(repetition_penalties));
  p.penalty_stride = stride_or_zero(repetition_penalties, 0);
  return p;
}

// An int32 [rows] tensor on the device of logits, any stride.
inline int64_t check_row_bounds(const char* op, Arg b, const Tensor& logits) {
  check_same_device(op, b, {logits, "logits"});
  check_dtype(op, b, ScalarType::Int);
  STABLEKERNELS_CHECK(b.t.dim() == 1 && b.t.size(0) == logits.size(0), op, "'", b.name,
                      "' must have shape [", logits.size(0),
                      "] ([num_rows], num_rows = the rows of 'logits'), got ", shape_str(b.t));
  return stride_or_zero(b.t, 0);
}

// logits float32 [num_rows, C], last dim contiguous, C < 2^31; row_starts and row_ends int32
// [num_rows]; indices int32 [num_rows, >= k], last dim contiguous; 1 <= k <= kMaxTopK.
inline TopKProblem check_top_k_per_row(const Tensor& logits, const Tensor& row_starts,
                                       const Tensor& row_ends, const Tensor& indices, int64_t k) {
  constexpr const char* op = "top_k_per_row";
  const Arg l{logits, "logits"};
  check_dtype(op, l, ScalarType::Float);
  check_dim(op, l, 2);
  check_last_dim_contiguous(op, l);
  STABLEKERNELS_CHECK(logits.size(1) <= std::numeric_limits<int32_t>::max(), op,
                      "'logits' must have at most 2^31 - 1 columns (the indices are int32), got ",
                      logits.size(1));
  STABLEKERNELS_CHECK(k >= 1 && k <= kMaxTopK, op, "'k' must be in [1, ", kMaxTopK, "], got ", k);
  TopKProblem p;
  p.rows = logits.size(0);
  p.cols = logits.size(1);
  p.logits_stride = stride_or_zero(logits, 0);
  p.starts_stride = check_row_bounds(op, {row_starts, "row_starts"}, logits);
  p.ends_stride = check_row_bounds(op, {row_ends, "row_ends"}, logits);
  const Arg ix{indices, "indices"};
  check_same_device(op, ix, l);
  check_dtype(op, ix, ScalarType::Int);
  STABLEKERNELS_CHECK(indices.dim() == 2 && indices.size(0) == p.rows && indices.size(1) >= k, op,
                      "'indices' must have shape [", p.rows, ", >= ", k,
                      "] ([num_rows, >= k]), got ", shape_str(indices));
  check_last_dim_contiguous(op, ix);
  p.indices_stride = stride_or_zero(indices, 0);
  p.k = static_cast<int>(k);
  return p;
}

}  // namespace stablekernels::sampling
