# Extras for vmrepl_protocol, included by core/CMakeLists.txt inside the target's scope.
# msgpack-cxx is header-only (core/protocol/msgpack_api.h configures it); zstd compresses
# block batches. GLOBAL so the imported target resolves for every consumer of the library.
find_path(VMREPL_MSGPACK_INCLUDE_DIR msgpack.hpp REQUIRED)
if(NOT TARGET PkgConfig::ZSTD)
  pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET GLOBAL libzstd)
endif()
target_include_directories(vmrepl_${name} SYSTEM PUBLIC ${VMREPL_MSGPACK_INCLUDE_DIR})
target_link_libraries(vmrepl_${name} PUBLIC PkgConfig::ZSTD)
