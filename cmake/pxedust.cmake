# Shared build settings and the two helpers every module uses:
#   pxedust_library(NAME SOURCES ... DEPS ...)   -> static library pxedust_NAME, includes rooted at src/
#   pxedust_unit_test(NAME SOURCES ... DEPS ...) -> GoogleTest executable registered with CTest

add_library(pxedust_flags INTERFACE)
target_compile_options(pxedust_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
  -Wimplicit-fallthrough -Wformat=2 -Wcast-qual -Wundef)
if(PXEDUST_WERROR)
  target_compile_options(pxedust_flags INTERFACE -Werror)
endif()
if(PXEDUST_SANITIZE)
  target_compile_options(pxedust_flags INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(pxedust_flags INTERFACE -fsanitize=address,undefined)
endif()
if(PXEDUST_FUZZ)
  # Libraries get coverage instrumentation; only the harness links libFuzzer's main().
  target_compile_options(pxedust_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined)
  target_link_options(pxedust_flags INTERFACE -fsanitize=address,undefined)
endif()

function(pxedust_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(pxedust_${name} STATIC ${A_SOURCES})
  target_include_directories(pxedust_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(pxedust_${name} PUBLIC pxedust_flags ${A_DEPS})
endfunction()

function(pxedust_unit_test name)
  if(NOT PXEDUST_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE pxedust_flags ${A_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES LABELS unit)
endfunction()
