// Reading a source file that someone else named: an agent's module, an editor's URI, `hotd patch`,
// a watched directory. Such a path may be a FIFO (open would wait for a writer), a device
// (/dev/zero never ends; opening some has side effects) or a huge file, and the daemon has one thread.
// So only regular files are opened, without blocking, and at most kMaxSourceBytes are read, the cap the
// agent puts on the texts it sends: every read is bounded in time and memory.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace hotd::server {

inline constexpr std::size_t kMaxSourceBytes = std::size_t{8} << 20;

struct SourceFile {
  std::optional<std::string> text;  // the whole file
  std::string error;                // without text: why ("a FIFO", "larger than 8 MiB", the system's reason)
  bool missing = false;             // without text: nothing has that name (deleted, or never there)
};

SourceFile read_source_file(const std::string& path);

// Why `path` is not a Python module hotd can patch ("not a Python file (.html): ..."), or empty: names
// ending in .py or .pyw, and names without an extension (scripts such as `manage`), are Python.
std::string not_python_reason(const std::string& path);

}  // namespace hotd::server
