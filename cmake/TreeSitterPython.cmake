# tree-sitter-python comes from the npm registry as the exact registry tarball, pinned by SHA-256 and
# cached outside the build tree so that a rebuild (or a fresh build directory) works offline.
# 0.23.6 is the newest grammar with ABI 14, which Debian's libtree-sitter 0.20.7 accepts.
set(HOTD_TSP_VERSION 0.23.6)
set(HOTD_TSP_SHA256 aab5b860d93dbf84b37fed532f7dacc0468ede5387d0c74911d68f964287662a)

if(DEFINED ENV{HOTD_CACHE_DIR})
  set(_hotd_cache_default "$ENV{HOTD_CACHE_DIR}")
elseif(DEFINED ENV{XDG_CACHE_HOME})
  set(_hotd_cache_default "$ENV{XDG_CACHE_HOME}/hotd")
else()
  set(_hotd_cache_default "$ENV{HOME}/.cache/hotd")
endif()
set(HOTD_CACHE_DIR "${_hotd_cache_default}" CACHE PATH "Where downloaded dependency tarballs are kept")

set(_tsp_tarball "${HOTD_CACHE_DIR}/tree-sitter-python-${HOTD_TSP_VERSION}.tgz")
if(NOT EXISTS "${_tsp_tarball}")
  find_program(NPM_EXECUTABLE npm REQUIRED)
  file(MAKE_DIRECTORY "${HOTD_CACHE_DIR}")
  message(STATUS "Fetching tree-sitter-python ${HOTD_TSP_VERSION} from the npm registry")
  execute_process(
    COMMAND "${NPM_EXECUTABLE}" pack "tree-sitter-python@${HOTD_TSP_VERSION}" --silent
            --pack-destination "${HOTD_CACHE_DIR}"
    RESULT_VARIABLE _npm_result OUTPUT_QUIET)
  if(NOT _npm_result EQUAL 0 OR NOT EXISTS "${_tsp_tarball}")
    message(FATAL_ERROR "npm pack tree-sitter-python@${HOTD_TSP_VERSION} failed (${_npm_result}); "
                        "is the npm registry reachable? Run scripts/setup.sh.")
  endif()
endif()

file(SHA256 "${_tsp_tarball}" _tsp_actual)
if(NOT _tsp_actual STREQUAL HOTD_TSP_SHA256)
  message(FATAL_ERROR "${_tsp_tarball} has SHA-256 ${_tsp_actual}, expected ${HOTD_TSP_SHA256}. "
                      "Delete it to fetch it again.")
endif()

set(_tsp_dir "${CMAKE_BINARY_DIR}/_deps/tree-sitter-python-${HOTD_TSP_VERSION}")
if(NOT EXISTS "${_tsp_dir}/package/src/parser.c")
  file(MAKE_DIRECTORY "${_tsp_dir}")
  file(ARCHIVE_EXTRACT INPUT "${_tsp_tarball}" DESTINATION "${_tsp_dir}")
endif()

# The grammar compiles against its own tree_sitter/parser.h, never the system one.
add_library(tree_sitter_python STATIC "${_tsp_dir}/package/src/parser.c" "${_tsp_dir}/package/src/scanner.c")
target_include_directories(tree_sitter_python PRIVATE "${_tsp_dir}/package/src")
set_target_properties(tree_sitter_python PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 11)
target_compile_options(tree_sitter_python PRIVATE -O2 -w)
