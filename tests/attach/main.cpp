#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "target_process.hpp"

// 77, ctest's SKIP_RETURN_CODE for these tests, when a test skipped part of itself and none failed.
int main(int argc, char** argv) {
  const int failed = doctest::Context(argc, argv).run();
  return failed == 0 && hotd::attach_test::any_skipped() ? 77 : failed;
}
