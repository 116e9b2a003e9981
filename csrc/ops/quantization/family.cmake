# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(quantization
  CPU_SOURCES  quantization_def.cpp quantization_cpu.cpp
  CUDA_SOURCES quantization_cuda.cu quantization_cuda.cpp)
# The CPU row loops are branch-free integer and float32 operations with selects; GCC
# vectorizes them only when a comparison may not trap (nothing here reads FP exception flags).
set_source_files_properties("${CMAKE_CURRENT_LIST_DIR}/quantization_cpu.cpp"
  PROPERTIES COMPILE_OPTIONS "-fno-trapping-math")
