#include "source_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace hotd::server {

namespace {

std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

std::string too_large() { return "larger than " + std::to_string(kMaxSourceBytes >> 20) + " MiB"; }

}  // namespace

SourceFile read_source_file(const std::string& path) {
  SourceFile file;
  const auto fail = [&](std::string why) {
    file.error = std::move(why);
    return file;
  };
  // Looked at before opening: opening a device can have effects of its own (a watchdog, a tape).
  struct stat before {};
  if (::stat(path.c_str(), &before) != 0) {
    file.missing = errno == ENOENT;
    return fail(std::strerror(errno));
  }
  if (!S_ISREG(before.st_mode)) return fail(file_kind(before.st_mode));
  if (static_cast<std::size_t>(before.st_size) > kMaxSourceBytes) return fail(too_large());
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat opened {};
  if (::fstat(fd, &opened) != 0 || !S_ISREG(opened.st_mode) || opened.st_dev != before.st_dev ||
      opened.st_ino != before.st_ino) {
    ::close(fd);
    return fail("replaced while being opened");
  }
  // Up to one byte past the cap, whatever st_size said: the file may grow, and /proc files say 0.
  std::string text;
  text.reserve(static_cast<std::size_t>(before.st_size));
  char chunk[64 * 1024];
  while (text.size() <= kMaxSourceBytes) {
    const ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int reason = errno;
      ::close(fd);
      return fail(std::strerror(reason));
    }
    if (got == 0) break;
    text.append(chunk, static_cast<std::size_t>(got));
  }
  ::close(fd);
  if (text.size() > kMaxSourceBytes) return fail(too_large());
  file.text = std::move(text);
  return file;
}

std::string not_python_reason(const std::string& path) {
  const std::string extension = std::filesystem::path(path).extension().string();
  if (extension.empty() || extension == ".py" || extension == ".pyw") return "";
  return "not a Python file (" + extension + "): hotd patches Python modules (.py, .pyw)";
}

}  // namespace hotd::server
