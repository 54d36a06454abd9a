// Between the daemon's checker (python_syntax_check.cpp) and the module it loads with dlopen
// (python_compiler.cpp, which links libpython): plain C, so that neither side depends on the other's
// C++ types. All three run on the checker's thread, which holds the GIL from start to finalize.
#pragma once

#include <stddef.h>
#include <stdint.h>

#define HOTD_PYTHON_EXPORT __attribute__((visibility("default")))

extern "C" {

// The exception compile() raised. Texts are truncated to fit, always terminated; positions are
// 1-based, columns in code points; end_line/end_column are 0 when Python gave none.
struct HotdPythonError {
  char type[64];
  char message[512];
  uint32_t line;
  uint32_t column;
  uint32_t end_line;
  uint32_t end_column;
};

// Starts an isolated interpreter whose standard library is that of `program_name`. 0, or -1 with
// the reason in `why`.
using HotdPythonStart = int (*)(const char* program_name, char* why, size_t why_size);
// compile(text, "", "exec", dont_inherit=True), never run: 0 when it compiles, 1 with `error` set,
// -1 when the check could not run (`error->message` says why).
using HotdPythonCompile = int (*)(const char* text, size_t size, HotdPythonError* error);
using HotdPythonFinalize = void (*)();

}  // extern "C"
