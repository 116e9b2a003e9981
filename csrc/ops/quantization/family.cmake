# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(quantization
  CPU_SOURCES  quantization_def.cpp quantization_cpu.cpp
  CUDA_SOURCES quantization_cuda.cu quantization_cuda.cpp)
