# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(hadamard
  CPU_SOURCES  hadamard_def.cpp hadamard_cpu.cpp
  CUDA_SOURCES hadamard_cuda.cu hadamard_cuda.cpp)
