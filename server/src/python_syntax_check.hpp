// CPython's own verdict on a saved file: the text is compiled (never run) by an interpreter embedded in
// the daemon, on a worker thread of its own, so that editors see the exact error Python would raise,
// including those hotd's parser accepts (an over-indented line in a class body). The interpreter lives
// in a module the worker loads (python_compiler.cpp): neither this code nor `hotd` links libpython.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace hotd::server {

// A text larger than this is not checked: compiling takes up to seconds per MiB (more for deeply
// nested code), holding the worker, and the daemon's exit waits for a compile in progress.
inline constexpr std::size_t kMaxPythonCheckBytes = 1024 * 1024;

// The exception compile() raised, as Python reports it.
struct PythonSyntaxError {
  std::string type;     // "IndentationError", "SyntaxError", "TabError"; "ValueError" for NUL bytes
  std::string message;  // "unexpected indent"
  // 1-based, columns in code points of the UTF-8 text. `end_line`/`end_column` are 0 when Python gave
  // none (it gives -1 or 0 for some errors).
  std::uint32_t line = 1;
  std::uint32_t column = 1;
  std::uint32_t end_line = 0;
  std::uint32_t end_column = 0;
};

struct PythonSyntaxCheck {
  std::optional<PythonSyntaxError> error;  // none: Python compiles the text (or it was not checked)
  std::string not_checked;                 // why it was not checked: too large, no interpreter; else empty
};

class PythonSyntaxChecker {
 public:
  // Runs on the worker thread with the result and the text that was checked.
  using Done = std::function<void(PythonSyntaxCheck result, std::string text)>;

  PythonSyntaxChecker() = default;
  // Stops the worker after its current check (queued ones are dropped) and finalizes the interpreter.
  // Compiling cannot be interrupted: this waits for a check in progress (see kMaxPythonCheckBytes).
  ~PythonSyntaxChecker();
  PythonSyntaxChecker(const PythonSyntaxChecker&) = delete;
  PythonSyntaxChecker& operator=(const PythonSyntaxChecker&) = delete;

  // Queues a check of `text`, a version of `file` (which is never read). A queued check of the same
  // `file` is replaced (its `done` never runs): only the newest version of a file matters. The worker
  // thread and the interpreter start with the first check. One checker per process: CPython cannot be
  // initialized again cleanly after it was finalized.
  void check(const std::string& file, std::string text, Done done);

 private:
  struct Job {
    std::string file;
    std::string text;
    Done done;
  };
  void work();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace hotd::server
