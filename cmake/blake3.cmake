# Builds the official BLAKE3 C implementation shipped by Debian's
# librust-blake3-dev as a static library: x86-64 assembly for every SIMD
# level with runtime dispatch, portable code elsewhere. Nothing is vendored.
file(GLOB _blake3_dirs LIST_DIRECTORIES true "/usr/share/cargo/registry/blake3-*/c")
list(SORT _blake3_dirs)
list(GET _blake3_dirs -1 BLAKE3_C_DIR)
if(NOT EXISTS "${BLAKE3_C_DIR}/blake3.h")
  message(FATAL_ERROR "BLAKE3 C sources not found; run scripts/install-deps.sh (librust-blake3-dev)")
endif()
enable_language(ASM)
set(_b3 "${BLAKE3_C_DIR}")
set(_b3_src ${_b3}/blake3.c ${_b3}/blake3_dispatch.c ${_b3}/blake3_portable.c)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  list(APPEND _b3_src
    ${_b3}/blake3_sse2_x86-64_unix.S ${_b3}/blake3_sse41_x86-64_unix.S
    ${_b3}/blake3_avx2_x86-64_unix.S ${_b3}/blake3_avx512_x86-64_unix.S)
  set(_b3_defs "")
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  list(APPEND _b3_src ${_b3}/blake3_neon.c)
  set(_b3_defs BLAKE3_USE_NEON=1)
else()
  set(_b3_defs BLAKE3_NO_SSE2 BLAKE3_NO_SSE41 BLAKE3_NO_AVX2 BLAKE3_NO_AVX512)
endif()
add_library(blake3 STATIC ${_b3_src})
target_include_directories(blake3 SYSTEM PUBLIC ${_b3})
target_compile_definitions(blake3 PRIVATE ${_b3_defs})
set_target_properties(blake3 PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
target_compile_options(blake3 PRIVATE -w)
