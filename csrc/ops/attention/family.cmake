# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(attention
  CPU_SOURCES  attention_def.cpp attention_cpu.cpp
  CUDA_SOURCES attention_cuda.cu attention_cuda.cpp)
