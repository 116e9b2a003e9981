# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(attention
  CPU_SOURCES  attention_def.cpp attention_cpu.cpp
  CUDA_SOURCES attention_cuda.cu attention_cuda.cpp)
# The CPU merge loops are branch-free float32 arithmetic; GCC vectorizes them only when a
# comparison may not trap (nothing here reads FP exception flags).
set_source_files_properties("${CMAKE_CURRENT_LIST_DIR}/attention_cpu.cpp"
  PROPERTIES COMPILE_OPTIONS "-fno-trapping-math")
