# SPDX-License-Identifier: Apache-2.0
# Helper functions for the stablekernels build. Each one is documented where it
# is defined; CMakeLists.txt and csrc/ops/*/family.cmake call them.

# stablekernels_read_torch_floor(<pyproject.toml> <out-var>)
#   Reads the torch floor from the `dependencies = ["torch>=X.Y"]` line of
#   pyproject.toml, the single place where it is written.
#   Example: stablekernels_read_torch_floor(${CMAKE_SOURCE_DIR}/pyproject.toml FLOOR)  # 2.10
function(stablekernels_read_torch_floor pyproject out)
  file(STRINGS "${pyproject}" _lines REGEX "^dependencies *= *\\[.*\"torch>=")
  if(NOT _lines MATCHES "\"torch>=([0-9]+)\\.([0-9]+)(\\.[0-9]+)?\"")
    message(FATAL_ERROR "no `torch>=X.Y` in the dependencies line of ${pyproject}")
  endif()
  set(${out} "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}" PARENT_SCOPE)
endfunction()

# stablekernels_torch_target_version(<X.Y> <out-var>)
#   Encodes a torch release as TORCH_TARGET_VERSION (MAJ<<56 | MIN<<48).
#   Example: stablekernels_torch_target_version(2.10 V)  # 0x020a000000000000ULL
function(stablekernels_torch_target_version version out)
  string(REPLACE "." ";" _parts "${version}")
  list(GET _parts 0 _maj)
  list(GET _parts 1 _min)
  math(EXPR _hex "(${_maj} << 8) | ${_min}" OUTPUT_FORMAT HEXADECIMAL)
  string(REPLACE "0x" "" _hex "${_hex}")
  string(LENGTH "${_hex}" _len)
  if(_len EQUAL 3)
    set(_hex "0${_hex}")
  endif()
  set(${out} "0x${_hex}000000000000ULL" PARENT_SCOPE)
endfunction()

# stablekernels_compiler_cache(<none|sccache|ccache>)
#   Sets CMAKE_C/CXX/CUDA_COMPILER_LAUNCHER (before any target exists) to the named
#   compiler cache, found on PATH; "none" or "" leaves the compilers unwrapped.
#   Only the launcher is recorded in the build tree: the compile commands, and so
#   the cache keys, are the same with and without it.
#   Example: stablekernels_compiler_cache(sccache)
macro(stablekernels_compiler_cache tool)
  if(NOT "${tool}" STREQUAL "" AND NOT "${tool}" STREQUAL "none")
    if(NOT "${tool}" MATCHES "^(sccache|ccache)$")
      message(FATAL_ERROR "STABLEKERNELS_COMPILER_CACHE must be none, sccache or ccache, got '${tool}'")
    endif()
    find_program(_sk_launcher "${tool}" NO_CACHE)
    if(NOT _sk_launcher)
      message(FATAL_ERROR "STABLEKERNELS_COMPILER_CACHE=${tool}, but no ${tool} on PATH "
                          "(pip install ${tool}, or set STABLEKERNELS_COMPILER_CACHE=none)")
    endif()
    foreach(_sk_lang C CXX CUDA)
      set(CMAKE_${_sk_lang}_COMPILER_LAUNCHER "${_sk_launcher}")
    endforeach()
    message(STATUS "stablekernels: compiler cache ${_sk_launcher}")
  endif()
endmacro()

# stablekernels_find_torch()
#   Locates the installed torch package without importing it (a torch installed
#   with --no-deps for its headers may not import) and defines the imported
#   targets stablekernels::torch_cpu and stablekernels::torch_cuda (when present),
#   plus STABLEKERNELS_TORCH_DIR and STABLEKERNELS_TORCH_HEADER_VERSION.
#   Only the stable-ABI headers are used; the libraries are linked for their C
#   shim symbols (torch loads them RTLD_LOCAL, so an extension must name them).
#   torch's include dir is given to C++ sources only: nvcc translation units are
#   torch-free (docs/farm.md: a torch-free .cu is a cheap compile-cache hit), so a
#   .cu that includes a torch header fails to compile, as `nox -s lint` would.
function(stablekernels_find_torch)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
      "import importlib.util, importlib.metadata, os; s = importlib.util.find_spec('torch'); print(os.path.dirname(s.origin) if s else ''); print(importlib.metadata.version('torch') if s else '')"
    OUTPUT_VARIABLE _out OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
  string(REPLACE "\n" ";" _out "${_out}")
  list(LENGTH _out _n)
  if(NOT _rc EQUAL 0 OR _n LESS 2 OR "${_out}" STREQUAL ";")
    message(FATAL_ERROR "torch is not installed for ${Python_EXECUTABLE}; it provides the stable-ABI headers")
  endif()
  list(GET _out 0 _dir)
  list(GET _out 1 _ver)
  if(NOT EXISTS "${_dir}/include/torch/csrc/stable/library.h")
    message(FATAL_ERROR "torch ${_ver} at ${_dir} has no stable-ABI headers")
  endif()
  if(NOT EXISTS "${_dir}/include/torch/headeronly/version.h")
    message(FATAL_ERROR "torch ${_ver} headers are too old to build with: use torch>=2.10 headers")
  endif()
  set(STABLEKERNELS_TORCH_DIR "${_dir}" PARENT_SCOPE)
  set(STABLEKERNELS_TORCH_HEADER_VERSION "${_ver}" PARENT_SCOPE)

  add_library(stablekernels::torch_cpu SHARED IMPORTED GLOBAL)
  set_target_properties(stablekernels::torch_cpu PROPERTIES
    IMPORTED_LOCATION "${_dir}/lib/libtorch_cpu.so"
    IMPORTED_NO_SONAME OFF
    INTERFACE_INCLUDE_DIRECTORIES "$<$<COMPILE_LANGUAGE:CXX>:${_dir}/include>")
  target_link_options(stablekernels::torch_cpu INTERFACE "LINKER:-rpath-link,${_dir}/lib")
  if(EXISTS "${_dir}/lib/libtorch_cuda.so")
    add_library(stablekernels::torch_cuda SHARED IMPORTED GLOBAL)
    set_target_properties(stablekernels::torch_cuda PROPERTIES
      IMPORTED_LOCATION "${_dir}/lib/libtorch_cuda.so"
      INTERFACE_INCLUDE_DIRECTORIES "$<$<COMPILE_LANGUAGE:CXX>:${_dir}/include>")
    set(STABLEKERNELS_TORCH_HAS_CUDA ON PARENT_SCOPE)
  else()
    set(STABLEKERNELS_TORCH_HAS_CUDA OFF PARENT_SCOPE)
  endif()
endfunction()

# stablekernels_add_op_family(<name>
#   CPU_SOURCES  <files...>   # schema definitions and CPU kernels, compiled into _C
#   CUDA_SOURCES <files...>)  # CUDA ops, compiled into _C_cuda: the torch-free launch
#                             # code <f>_cuda.cu (nvcc) and its torch glue <f>_cuda.cpp
#                             # (the C++ compiler, with the CUDA toolkit's include dirs)
#   Registers an op family. Paths are relative to the calling family.cmake.
#   Honors STABLEKERNELS_OPS (a family not listed there is skipped).
#   Example (csrc/ops/norm/family.cmake):
#     stablekernels_add_op_family(norm
#       CPU_SOURCES  norm_def.cpp norm_cpu.cpp
#       CUDA_SOURCES norm_cuda.cu norm_cuda.cpp)
function(stablekernels_add_op_family name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "CPU_SOURCES;CUDA_SOURCES")
  if(STABLEKERNELS_OPS AND NOT name IN_LIST STABLEKERNELS_OPS)
    message(STATUS "stablekernels: op family ${name}: skipped (STABLEKERNELS_OPS)")
    return()
  endif()
  set(_cpu "")
  foreach(_s IN LISTS ARG_CPU_SOURCES)
    list(APPEND _cpu "${CMAKE_CURRENT_LIST_DIR}/${_s}")
  endforeach()
  # The CPU kernels' loops are branch-free float32 arithmetic with selects (and the baseline's
  # float16 conversion compares floats); GCC vectorizes them only when a comparison may not trap.
  # Nothing here reads the floating-point exception flags.
  set_source_files_properties(${_cpu} PROPERTIES COMPILE_OPTIONS "-fno-trapping-math")
  set_property(GLOBAL APPEND PROPERTY STABLEKERNELS_CPU_SOURCES ${_cpu})
  set(_what "CPU")
  if(STABLEKERNELS_WITH_CUDA)
    set(_cuda "")
    foreach(_s IN LISTS ARG_CUDA_SOURCES)
      list(APPEND _cuda "${CMAKE_CURRENT_LIST_DIR}/${_s}")
    endforeach()
    set_property(GLOBAL APPEND PROPERTY STABLEKERNELS_CUDA_SOURCES ${_cuda})
    set(_what "CPU + CUDA (${STABLEKERNELS_CMAKE_CUDA_ARCHS})")
  endif()
  set_property(GLOBAL APPEND PROPERTY STABLEKERNELS_FAMILIES ${name})
  message(STATUS "stablekernels: op family ${name}: ${_what}")
endfunction()

# stablekernels_add_library(<target> SOURCES <files...> TORCH_LIBS <targets...>)
#   One abi3 Python extension module (<target>.abi3.so) built on the stable ABI:
#   TORCH_TARGET_VERSION set for every compiler, Py_LIMITED_API (set by USE_SABI), our include
#   dirs, linked only to the torch libraries named, installed into the package.
function(stablekernels_add_library target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "SOURCES;TORCH_LIBS")
  Python_add_library(${target} MODULE USE_SABI 3.10 WITH_SOABI ${ARG_SOURCES})
  target_include_directories(${target} PRIVATE
    "${PROJECT_SOURCE_DIR}/csrc" "${PROJECT_SOURCE_DIR}/csrc/include")
  target_compile_definitions(${target} PRIVATE
    TORCH_TARGET_VERSION=${STABLEKERNELS_TORCH_TARGET_VERSION})
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-O3 -Wall -Wextra -Wno-unused-parameter>)
  # Source paths the binaries embed (__FILE__ in torch's check messages) are written relative
  # to the checkout and to torch's package: the .so files do not depend on where they lay.
  foreach(_map "${PROJECT_SOURCE_DIR}/=" "${STABLEKERNELS_TORCH_DIR}/=torch/")
    target_compile_options(${target} PRIVATE
      "$<$<COMPILE_LANGUAGE:CXX>:-fmacro-prefix-map=${_map}>"
      "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-fmacro-prefix-map=${_map}>")
  endforeach()
  target_link_libraries(${target} PRIVATE ${ARG_TORCH_LIBS})
  # Export PyInit_<target> only: nothing else of ours (or of a static archive such
  # as cudart_static) can clash with another extension's symbols.
  target_link_options(${target} PRIVATE "LINKER:--exclude-libs,ALL"
    "LINKER:--version-script=${PROJECT_SOURCE_DIR}/cmake/exports.map")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${PROJECT_SOURCE_DIR}/cmake/exports.map")
  set_target_properties(${target} PROPERTIES SKIP_BUILD_RPATH ON INSTALL_RPATH "")
  install(TARGETS ${target} LIBRARY DESTINATION stablekernels)
endfunction()

# stablekernels_git_revision(<out-var>)
#   STABLEKERNELS_GIT_REVISION if set, else `git rev-parse HEAD` (+ "-dirty"), else "unknown".
function(stablekernels_git_revision out)
  if(STABLEKERNELS_GIT_REVISION)
    set(${out} "${STABLEKERNELS_GIT_REVISION}" PARENT_SCOPE)
    return()
  endif()
  set(_rev "unknown")
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse HEAD
      WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}" OUTPUT_VARIABLE _r
      OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
    if(_rc EQUAL 0 AND _r)
      set(_rev "${_r}")
      execute_process(COMMAND "${GIT_EXECUTABLE}" status --porcelain --untracked-files=no
        WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}" OUTPUT_VARIABLE _dirty ERROR_QUIET)
      if(_dirty)
        string(APPEND _rev "-dirty")
      endif()
    endif()
  endif()
  set(${out} "${_rev}" PARENT_SCOPE)
endfunction()

# stablekernels_py_tuple(<list> <out-var>)
#   A CMake list as a Python tuple literal of strings: "a;b" -> ("a", "b",)
function(stablekernels_py_tuple items out)
  set(_t "(")
  foreach(_i IN LISTS items)
    string(APPEND _t "\"${_i}\", ")
  endforeach()
  string(APPEND _t ")")
  set(${out} "${_t}" PARENT_SCOPE)
endfunction()
