// Commands that talk to the daemon: serve, stop, status, ps, patch, detach, run.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace hotd::cli {

struct ServeOptions {
  bool foreground = false;
  bool quiet = false;
  int patch_timeout_ms = 10000;
  std::vector<std::string> listen;           // --listen ADDR:PORT: agents over TCP
  std::vector<std::string> allowed_origins;  // --allow-origin
  std::size_t max_connections = 1024;        // --max-connections
};
int run_serve(const ServeOptions& options);
int run_stop();
int run_status(bool json);
int run_ps(bool json);

struct PatchOptions {
  std::string path;
  bool json = false;
  double timeout_seconds = 30;
};
int run_patch(const PatchOptions& options);

struct ReloadOptions {
  std::string target;  // a module name, or a file (a path ending in .py, or an existing file)
  bool json = false;
  double timeout_seconds = 60;
};
int run_reload(const ReloadOptions& options);
int run_detach(int pid);

struct RevertOptions {
  std::string path;
  bool json = false;
  double timeout_seconds = 30;
};
int run_revert(const RevertOptions& options);

struct LogOptions {
  std::string path;  // empty: every file
  bool json = false;
};
int run_log(const LogOptions& options);

struct RunOptions {
  std::string python = "python3";
  std::string module;               // -m
  std::vector<std::string> command; // script and its arguments, or the module's arguments
  bool no_watch = false;
  std::vector<std::string> watch;
  bool quiet = false;
  bool verbose = false;
  bool interactive = false;  // -i: a Python prompt in the program's namespace when it ends
  int debounce_ms = 0;
  double poll_seconds = 0;
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  std::string connect;                // --connect HOST:PORT: a daemon over TCP instead of the local socket
  std::string token_file;             // --token-file
  std::vector<std::string> path_map;  // --map REMOTE_PREFIX:LOCAL_PREFIX
};
int run_run(const RunOptions& options);

}  // namespace hotd::cli
