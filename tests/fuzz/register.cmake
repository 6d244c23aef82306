# Included by tests/CMakeLists.txt (main tree, not the sanitizer tree): runs the fuzz target
# that tools/test.sh builds in build-fuzz/ (clang, -DVMREPL_FUZZ=ON) for 30 seconds on a copy
# of the seed corpus. A missing binary fails the test rather than skipping it.
set(VMREPL_FUZZ_DIR ${PROJECT_SOURCE_DIR}/build-fuzz CACHE PATH "libFuzzer build tree")
add_test(NAME fuzz.frame_decoder
  COMMAND /bin/sh ${CMAKE_CURRENT_LIST_DIR}/run_fuzz.sh
    ${VMREPL_FUZZ_DIR}/tests/fuzz/frame_decoder_fuzz ${CMAKE_CURRENT_LIST_DIR}/corpus
    ${CMAKE_CURRENT_BINARY_DIR}/fuzz/frame_decoder 30)
set_tests_properties(fuzz.frame_decoder PROPERTIES LABELS "fuzz" TIMEOUT 180)
