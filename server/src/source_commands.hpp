// Commands that work on source files alone, with no daemon: `hotd diff` and `hotd outline`.
#pragma once

#include <string>

namespace hotd::cli {

// Exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the command ran and found a problem (syntax error, rude edit)
inline constexpr int kExitUsage = 2;   // bad arguments, unreadable files, no daemon

struct DiffOptions {
  std::string old_path;
  std::string new_path;
  bool json = false;
};
int run_diff(const DiffOptions& options);

struct OutlineOptions {
  std::string path;
  bool json = false;
};
int run_outline(const OutlineOptions& options);

}  // namespace hotd::cli
