// `hotd attach <pid>`: inject the agent into a running Python process started without hotd.
#pragma once

namespace hotd::cli {

struct AttachOptions {
  int pid = 0;
  double timeout_seconds = 5;  // to find a safe point, and then for the agent to register
  bool json = false;
};
int run_attach(const AttachOptions& options);

}  // namespace hotd::cli
