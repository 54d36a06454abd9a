#include "python_syntax_check.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <utility>

#include "python_compiler.h"

namespace hotd::server {

namespace {

// The compiler module's entry points, or why they are missing.
struct PythonCompiler {
  HotdPythonStart start = nullptr;
  HotdPythonCompile compile = nullptr;
  HotdPythonFinalize finalize = nullptr;
  std::string missing;
};

// Loads the module and starts its interpreter. Never unloaded: libpython cannot be unloaded safely.
PythonCompiler load_compiler() {
  PythonCompiler compiler;
  void* module = ::dlopen(HOTD_PYTHON_COMPILER_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (module) {
    compiler.start = reinterpret_cast<HotdPythonStart>(::dlsym(module, "hotd_python_start"));
    compiler.compile = reinterpret_cast<HotdPythonCompile>(::dlsym(module, "hotd_python_compile"));
    compiler.finalize = reinterpret_cast<HotdPythonFinalize>(::dlsym(module, "hotd_python_finalize"));
  }
  if (!compiler.start || !compiler.compile || !compiler.finalize) {
    const char* error = ::dlerror();
    compiler.missing = error ? error : "cannot load " HOTD_PYTHON_COMPILER_LIBRARY;
    return compiler;
  }
  char why[512] = {};
  if (compiler.start(HOTD_PYTHON_EXECUTABLE, why, sizeof why) != 0) compiler.missing = why;
  return compiler;
}

PythonSyntaxCheck compile_text(const PythonCompiler& compiler, const std::string& text) {
  HotdPythonError error{};
  const int outcome = compiler.compile(text.data(), text.size(), &error);
  if (outcome == 0) return {};
  if (outcome < 0) return {std::nullopt, error.message};
  return {PythonSyntaxError{error.type, error.message, error.line, error.column, error.end_line, error.end_column}, {}};
}

}  // namespace

PythonSyntaxChecker::~PythonSyntaxChecker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_one();
  if (worker_.joinable()) worker_.join();
}

void PythonSyntaxChecker::check(const std::string& file, std::string text, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (!worker_.joinable()) worker_ = std::thread(&PythonSyntaxChecker::work, this);
    const auto queued = std::find_if(queue_.begin(), queue_.end(), [&](const Job& job) { return job.file == file; });
    if (queued != queue_.end()) {
      *queued = {file, std::move(text), std::move(done)};
    } else {
      queue_.push_back({file, std::move(text), std::move(done)});
    }
  }
  wake_.notify_one();
}

void PythonSyntaxChecker::work() {
  const PythonCompiler compiler = load_compiler();
  while (true) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    PythonSyntaxCheck result;
    if (job.text.size() > kMaxPythonCheckBytes) {
      result.not_checked = "larger than " + std::to_string(kMaxPythonCheckBytes >> 20) + " MiB";
    } else if (!compiler.missing.empty()) {
      result.not_checked = "no Python interpreter (" + compiler.missing + ")";
    } else {
      result = compile_text(compiler, job.text);
    }
    job.done(std::move(result), std::move(job.text));
  }
  if (compiler.missing.empty()) compiler.finalize();
}

}  // namespace hotd::server
