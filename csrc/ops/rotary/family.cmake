# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(rotary
  CPU_SOURCES  rotary_def.cpp rotary_cpu.cpp
  CUDA_SOURCES rotary_cuda.cu rotary_cuda.cpp)
