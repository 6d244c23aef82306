# Extras for vmrepl_blocks, included by core/CMakeLists.txt inside the target's scope.
# The AVX2 build of XXH3 (see xxh3_kernels.h); everything else stays at the baseline ISA and
# the choice is made at run time.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/blocks/xxh3_avx2.cpp
    TARGET_DIRECTORY vmrepl_${name}
    PROPERTIES COMPILE_OPTIONS "-mavx2")
endif()
