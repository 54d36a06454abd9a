// The native half of the hotd agent, loaded into a target Python process (by `hotd run`'s bootstrap
// through ctypes, or by `hotd attach` through ptrace + dlopen).
//
// `hotd_agent_start` only starts a thread: it may be called on a hijacked thread that holds the
// loader lock and maybe the GIL, where calling into Python could deadlock. The thread connects to the
// daemon and waits in poll() without the GIL, so an idle agent costs no CPU; it takes the GIL only
// to hand a message to the Python half (hotd_agent.link) and to send what that returns.
//
// The CPython C API is resolved at run time (dlsym), never linked: one binary serves Python 3.8 to
// 3.13, and Debian's python3, which has libpython inside the executable, is not given a second copy.
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent_frame.h"
#include "agent_handshake.h"

#define HOTD_EXPORT __attribute__((visibility("default")))

typedef struct _object PyObject;
typedef int PyGILState_STATE;

// The few C API functions the agent uses; all stable from 3.8 to 3.13.
static struct {
  int (*Py_IsInitialized)(void);
  int (*IsFinalizing)(void);  // Py_IsFinalizing (3.13) or _Py_IsFinalizing (3.7-3.12)
  PyGILState_STATE (*PyGILState_Ensure)(void);
  void (*PyGILState_Release)(PyGILState_STATE);
  int (*PyRun_SimpleString)(const char*);
  PyObject* (*PyImport_ImportModule)(const char*);
  PyObject* (*PyObject_GetAttrString)(PyObject*, const char*);
  PyObject* (*PyBytes_FromStringAndSize)(const char*, ssize_t);
  int (*PyBytes_AsStringAndSize)(PyObject*, char**, ssize_t*);
  PyObject* (*PyObject_CallFunctionObjArgs)(PyObject*, ...);
  int (*PyObject_IsTrue)(PyObject*);
  void (*Py_DecRef)(PyObject*);
  void (*PyErr_Print)(void);
} py;

static atomic_int agent_running;  // 1 while the agent thread lives; makes start idempotent

// A descriptor the agent made, with the identity of its file. The program may close any number
// (os.closerange) and reuse it for a file of its own, so the agent checks that identity before every
// use and never reads, writes or closes a number that no longer refers to its own file.
struct owned_fd {
  int fd;  // -1 when none
  dev_t device;
  ino_t inode;
};

#define NO_FD ((struct owned_fd){.fd = -1})

struct agent {
  char* config;          // "key=value\n" lines from the starter
  char* socket_path;     // from config `socket=`, or NULL with `tcp=`
  char* tcp_address;     // from config `tcp=HOST:PORT`: a daemon's `--listen` endpoint
  char* token_file;      // from config `token_file=`: its web.json (or the bare token), read per connection
  char* package_dir;     // from config `package=`: the hotd_agent Python package
  struct owned_fd wake_read, wake_write;  // written by Python's import hook: "new modules, please drain"
  struct owned_fd daemon;                 // the connection to the daemon
  PyObject* link;        // hotd_agent.link, once loaded
  int drain_again;       // link.drain_again after the last call: an import is still under way
};

// The agent of this process, for the fork handler: a forked child has no agent thread.
static struct agent* _Atomic running_agent;

// While an import the hook signalled has not finished, drain again after this long.
#define DRAIN_AGAIN_MS 20

static void debug(const char* format, ...) {
  static int enabled = -1;
  if (enabled < 0) enabled = getenv("HOTD_AGENT_DEBUG") != NULL;
  if (!enabled) return;
  va_list args;
  va_start(args, format);
  fprintf(stderr, "hotd agent [%d]: ", (int)getpid());
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
}

static void sleep_ms(long ms) {
  struct timespec delay = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&delay, &delay) != 0 && errno == EINTR) {
  }
}

// --- Resolving the C API --------------------------------------------------------------------

// Where libpython is a shared library, its symbols may not be global: find it in our own maps.
static void* find_libpython(void) {
  FILE* maps = fopen("/proc/self/maps", "r");
  if (!maps) return NULL;
  char line[4096];
  void* handle = NULL;
  while (!handle && fgets(line, sizeof line, maps)) {
    char* path = strchr(line, '/');
    if (!path || !strstr(path, "libpython3")) continue;
    path[strcspn(path, "\n")] = '\0';
    handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  }
  fclose(maps);
  return handle;
}

static int resolve_python_api(void) {
  void* scope = RTLD_DEFAULT;  // NULL: not a failure value here
  if (!dlsym(scope, "Py_IsInitialized")) {
    scope = find_libpython();
    if (!scope) return -1;
  }
#define RESOLVE(name)                                  \
  do {                                                 \
    *(void**)(&py.name) = dlsym(scope, #name);         \
    if (!py.name) {                                    \
      debug("missing C API function %s", #name);      \
      return -1;                                       \
    }                                                  \
  } while (0)
  RESOLVE(Py_IsInitialized);
  RESOLVE(PyGILState_Ensure);
  RESOLVE(PyGILState_Release);
  RESOLVE(PyRun_SimpleString);
  RESOLVE(PyImport_ImportModule);
  RESOLVE(PyObject_GetAttrString);
  RESOLVE(PyBytes_FromStringAndSize);
  RESOLVE(PyBytes_AsStringAndSize);
  RESOLVE(PyObject_CallFunctionObjArgs);
  RESOLVE(PyObject_IsTrue);
  RESOLVE(Py_DecRef);
  RESOLVE(PyErr_Print);
#undef RESOLVE
  *(void**)(&py.IsFinalizing) = dlsym(scope, "Py_IsFinalizing");
  if (!py.IsFinalizing) *(void**)(&py.IsFinalizing) = dlsym(scope, "_Py_IsFinalizing");
  return 0;
}

// A thread calling PyGILState_Ensure during finalization is terminated by the interpreter; check
// first, and stop instead.
static int finalizing(void) { return !py.Py_IsInitialized() || (py.IsFinalizing && py.IsFinalizing()); }

// --- Config ---------------------------------------------------------------------------------

static char* config_value(const char* config, const char* key) {
  const size_t key_length = strlen(key);
  for (const char* line = config; line && *line;) {
    const char* end = strchr(line, '\n');
    const size_t length = end ? (size_t)(end - line) : strlen(line);
    if (length > key_length && strncmp(line, key, key_length) == 0 && line[key_length] == '=') {
      return strndup(line + key_length + 1, length - key_length - 1);
    }
    line = end ? end + 1 : NULL;
  }
  return NULL;
}

// The wake pipe's write end for the import hook: its number (`wake_fd=`, -1 for none) and identity
// (`wake_inode=DEV:INO`), which the hook checks before each write.
static void wake_pipe_lines(const struct owned_fd* wake_write, char* lines, size_t size) {
  snprintf(lines, size, "wake_fd=%d\nwake_inode=%llu:%llu\n", wake_write->fd, (unsigned long long)wake_write->device,
           (unsigned long long)wake_write->inode);
}

// The config for Python: the starter's, this library's path (`library=`, to start an agent in forked
// children) and the wake pipe's lines.
static char* python_config(const char* config, const struct owned_fd* wake_write) {
  Dl_info self = {0};
  const char* library = dladdr((void*)&running_agent, &self) && self.dli_fname ? self.dli_fname : "";
  char wake[128];
  wake_pipe_lines(wake_write, wake, sizeof wake);
  const size_t size = strlen(config) + strlen(library) + strlen(wake) + 16;
  char* full = malloc(size);
  if (full) snprintf(full, size, "%s\nlibrary=%s\n%s", config, library, wake);
  return full;
}

// --- Descriptors the agent owns -------------------------------------------------------------

// The lowest number for the agent's descriptors: far above those a program opens first (each open
// takes the lowest free number), so that they rarely meet. Half the descriptor limit, at most 512:
// higher numbers would only grow the process's descriptor table.
static int high_fd_floor(void) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= 1024) return 512;
  return (int)(limit.rlim_cur / 2);
}

static int still_owned(const struct owned_fd* owned) {
  struct stat identity;
  return owned->fd >= 0 && fstat(owned->fd, &identity) == 0 && identity.st_dev == owned->device &&
         identity.st_ino == owned->inode;
}

// Closes the descriptor if it is still the agent's; forgets its number either way.
static void release_fd(struct owned_fd* owned) {
  if (still_owned(owned)) close(owned->fd);
  *owned = NO_FD;
}

// Takes `fd`, just made close-on-exec by the agent, as its own: moved to a high number (where the
// system allows) and its identity recorded. Returns 0, or -1 when `fd` is gone already.
static int own_fd(int fd, struct owned_fd* owned) {
  struct stat identity;
  if (fstat(fd, &identity) != 0) return -1;
  *owned = (struct owned_fd){.fd = fd, .device = identity.st_dev, .inode = identity.st_ino};
  const int high = fcntl(fd, F_DUPFD_CLOEXEC, high_fd_floor());
  if (high >= 0) {
    struct owned_fd original = *owned;
    release_fd(&original);
    owned->fd = high;
  }
  return 0;
}

// Replaces the wake pipe (at start, or after the program closed or reused either end): the old ends
// are closed only where they are still the agent's. Without descriptors to spare, there is none (-1):
// the daemon's `agent/sync` still finds every import.
static void renew_wake_pipe(struct agent* agent) {
  release_fd(&agent->wake_read);
  release_fd(&agent->wake_write);
  int ends[2];
  if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) return;
  if (own_fd(ends[0], &agent->wake_read) != 0 || own_fd(ends[1], &agent->wake_write) != 0) {
    release_fd(&agent->wake_read);
    agent->wake_write = NO_FD;
  }
}

// --- Socket I/O -----------------------------------------------------------------------------

// A new socket of the agent's own in `socket_fd`. Returns 0 or -1.
static int own_socket(int family, int type, struct owned_fd* socket_fd) {
  const int fd = socket(family, type | SOCK_CLOEXEC, 0);
  return fd >= 0 ? own_fd(fd, socket_fd) : -1;
}

static int connect_unix(const char* path, struct owned_fd* daemon) {
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof address.sun_path) return -1;
  strcpy(address.sun_path, path);
  if (own_socket(AF_UNIX, SOCK_STREAM, daemon) != 0) return -1;
  if (connect(daemon->fd, (struct sockaddr*)&address, sizeof address) != 0) {
    release_fd(daemon);
    return -1;
  }
  return 0;
}

static int write_all(const struct owned_fd* fd, const char* data, size_t size) {
  while (size > 0) {
    if (!still_owned(fd)) return -1;
    const ssize_t written = send(fd->fd, data, size, MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += written;
    size -= (size_t)written;
  }
  return 0;
}

static int send_framed(const struct owned_fd* fd, const char* body, size_t size) {
  char header[64];
  const int header_size = snprintf(header, sizeof header, "Content-Length: %zu\r\n\r\n", size);
  return write_all(fd, header, (size_t)header_size) == 0 ? write_all(fd, body, size) : -1;
}

// --- TCP: a daemon in another network namespace or on another machine -------------------------

#define TCP_TIMEOUT_MS 5000
#define MAX_TOKEN_BYTES 128

// The token from `path`: the "token" of the daemon's web.json, or the whole file stripped of
// whitespace. Hex digits only, lowercased as the daemon writes them (the key of the handshake's
// proofs). Returns 0, or -1 with nothing usable.
static int read_token(const char* path, char token[MAX_TOKEN_BYTES + 1]) {
  char text[4096];
  FILE* file = fopen(path, "re");
  if (!file) return -1;
  const size_t size = fread(text, 1, sizeof text - 1, file);
  fclose(file);
  text[size] = '\0';
  const char* start = text;
  const char* key = strstr(text, "\"token\"");
  if (key) {
    start = strchr(key + 7, ':');
    start = start ? strchr(start, '"') : NULL;
    if (!start) return -1;
    ++start;
  }
  start += strspn(start, " \t\r\n");
  const size_t length = strspn(start, "0123456789abcdefABCDEF");
  if (length == 0 || length > MAX_TOKEN_BYTES) return -1;
  for (size_t i = 0; i < length; ++i) token[i] = (char)tolower((unsigned char)start[i]);
  token[length] = '\0';
  return 0;
}

static long monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

// Waits for `events` on `fd` until `deadline` (monotonic_ms). Returns 0 when ready, -1 otherwise.
static int wait_fd(const struct owned_fd* fd, short events, long deadline) {
  if (!still_owned(fd)) return -1;
  struct pollfd waiter = {.fd = fd->fd, .events = events};
  int ready;
  while ((ready = poll(&waiter, 1, (int)(deadline > monotonic_ms() ? deadline - monotonic_ms() : 0))) < 0 &&
         errno == EINTR) {
  }
  return ready == 1 && !(waiter.revents & POLLNVAL) && still_owned(fd) ? 0 : -1;
}

static int connect_address(const struct addrinfo* address, long deadline, struct owned_fd* daemon) {
  if (own_socket(address->ai_family, SOCK_STREAM | SOCK_NONBLOCK, daemon) != 0) return -1;
  const int fd = daemon->fd;
  int error = 0;
  socklen_t size = sizeof error;
  if (connect(fd, address->ai_addr, address->ai_addrlen) != 0 &&
      (errno != EINPROGRESS || wait_fd(daemon, POLLOUT, deadline) != 0 ||
       getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0)) {
    release_fd(daemon);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);  // a daemon host that vanished is noticed
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  return 0;
}

// Reports a refusal once per kind, so that a wrong token is visible without flooding stderr on
// every retry.
static void report_refusal(const char* endpoint, const char* reason) {
  static char last[256];
  char message[256];
  snprintf(message, sizeof message, "%s: %s", endpoint, reason);
  if (strcmp(message, last) == 0) return;
  snprintf(last, sizeof last, "%s", message);
  fprintf(stderr, "hotd: cannot connect to the daemon at %s; retrying\n", message);
}

static int make_nonce(char nonce[HOTD_NONCE_HEX + 1]) {
  unsigned char bytes[HOTD_NONCE_HEX / 2];
  for (size_t filled = 0; filled < sizeof bytes;) {
    const ssize_t got = getrandom(bytes + filled, sizeof bytes - filled, 0);
    if (got < 0 && errno != EINTR) return -1;
    if (got > 0) filled += (size_t)got;
  }
  for (size_t i = 0; i < sizeof bytes; ++i) snprintf(nonce + 2 * i, 3, "%02x", bytes[i]);
  return 0;
}

// The value of header `name` (any case) in the NUL-terminated response `head`, when it is a nonce
// or a proof; NULL otherwise. Points into `head`.
static const char* handshake_header(const char* head, const char* name) {
  const size_t name_length = strlen(name);
  for (const char* line = strstr(head, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
    const char* field = line + 2;
    if (strncasecmp(field, name, name_length) != 0 || field[name_length] != ':') continue;
    const char* value = field + name_length + 1;
    value += strspn(value, " \t");
    return hotd_handshake_is_hex(value, strcspn(value, "\r")) ? value : NULL;
  }
  return NULL;
}

// Connects to `tcp=HOST:PORT` and upgrades the stream to `/agent` (web_server.cpp): the daemon must
// prove it holds the token before the agent answers with its own proof (agent_handshake.h); the
// token itself never travels. From then on the stream carries the LSP base framing of the Unix socket.
// Returns 0 with agent->daemon connected, or -1.
static int connect_tcp(struct agent* agent) {
  char host[256];
  const char* colon = strrchr(agent->tcp_address, ':');
  if (!colon || (size_t)(colon - agent->tcp_address) >= sizeof host) return -1;
  const char* name = agent->tcp_address;
  size_t name_length = (size_t)(colon - name);
  if (name_length >= 2 && name[0] == '[' && name[name_length - 1] == ']') {
    ++name;
    name_length -= 2;
  }
  memcpy(host, name, name_length);
  host[name_length] = '\0';
  char token[MAX_TOKEN_BYTES + 1];
  if (read_token(agent->token_file, token) != 0) {
    report_refusal(agent->tcp_address, "no token in token_file");
    return -1;
  }
  char agent_nonce[HOTD_NONCE_HEX + 1];
  if (make_nonce(agent_nonce) != 0) return -1;
  const long deadline = monotonic_ms() + TCP_TIMEOUT_MS;
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *addresses = NULL;
  if (getaddrinfo(host, colon + 1, &hints, &addresses) != 0) return -1;
  struct owned_fd* daemon = &agent->daemon;
  int connected = -1;
  for (const struct addrinfo* address = addresses; address && connected != 0; address = address->ai_next) {
    connected = connect_address(address, deadline, daemon);
  }
  freeaddrinfo(addresses);
  if (connected != 0) return -1;
  char request[512];
  const int size = snprintf(request, sizeof request,
                            "GET /agent HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: hotd-agent\r\n"
                            HOTD_AGENT_NONCE_HEADER ": %s\r\n\r\n",
                            agent->tcp_address, agent_nonce);
  // Byte by byte up to the blank line: nothing after it may be consumed here, it is the daemon's.
  char response[2048];
  size_t received = 0;
  if (size < (int)sizeof request && write_all(daemon, request, (size_t)size) == 0) {
    while (received < sizeof response - 1 && wait_fd(daemon, POLLIN, deadline) == 0 &&
           recv(daemon->fd, response + received, 1, 0) == 1) {
      ++received;
      response[received] = '\0';
      if (received >= 4 && memcmp(response + received - 4, "\r\n\r\n", 4) == 0) break;
    }
  }
  response[received] = '\0';
  const char* reason = NULL;
  char status[64];
  if (received >= 13 && memcmp(response, "HTTP/1.1 101 ", 13) == 0) {
    const char* daemon_nonce = handshake_header(response, HOTD_DAEMON_NONCE_HEADER);
    const char* daemon_proof = handshake_header(response, HOTD_DAEMON_PROOF_HEADER);
    char expected[HOTD_PROOF_HEX + 1];
    if (daemon_nonce) hotd_handshake_proof(token, HOTD_PROOF_BY_DAEMON, agent_nonce, daemon_nonce, expected);
    if (daemon_nonce && daemon_proof && hotd_handshake_equal(daemon_proof, expected, HOTD_PROOF_HEX)) {
      char answer[sizeof HOTD_AGENT_PROOF_HEADER + HOTD_PROOF_HEX + 4];
      char proof[HOTD_PROOF_HEX + 1];
      hotd_handshake_proof(token, HOTD_PROOF_BY_AGENT, agent_nonce, daemon_nonce, proof);
      snprintf(answer, sizeof answer, HOTD_AGENT_PROOF_HEADER ": %s\r\n", proof);
      if (write_all(daemon, answer, strlen(answer)) == 0) return 0;
      reason = "it closed the connection";
    } else {
      reason = "it did not prove it holds the token of token_file (a daemon started since with a new token, "
               "or not hotd's daemon); nothing was sent to it";
    }
  } else if (received) {
    const char* line_end = strstr(response, "\r\n");
    snprintf(status, sizeof status, "%.*s", line_end ? (int)(line_end - response) : (int)received, response);
    reason = status;
  } else {
    reason = "it closed the connection";
  }
  report_refusal(agent->tcp_address, reason);
  release_fd(daemon);
  return -1;
}

static int connect_daemon(struct agent* agent) {
  return agent->tcp_address ? connect_tcp(agent) : connect_unix(agent->socket_path, &agent->daemon);
}

// --- Calling the Python half ----------------------------------------------------------------

// Loads hotd_agent from its directory and registers it as `hotd_agent`, so that user code can
// `import hotd_agent` for the hooks API. Neither sys.path nor the target's __main__ namespace is
// touched, and importlib.util is avoided: on some versions it imports threading, which must not
// happen first on a foreign thread.
static int load_python_half(struct agent* agent) {
  if (agent->link) return 0;
  if (strpbrk(agent->package_dir, "'\\\n")) {
    debug("refusing a package path with quotes, backslashes or newlines: %s", agent->package_dir);
    return -1;
  }
  static const char* const format =
      "exec(compile('''\n"
      "import sys, types\n"
      "if 'hotd_agent' not in sys.modules:\n"
      "    m = types.ModuleType('hotd_agent')\n"
      "    m.__file__ = '%s/__init__.py'\n"
      "    m.__path__ = ['%s']\n"
      "    m.__package__ = 'hotd_agent'\n"
      "    sys.modules['hotd_agent'] = m\n"
      "    with open(m.__file__) as f:\n"
      "        exec(compile(f.read(), m.__file__, 'exec'), vars(m))\n"
      "''', '<hotd agent>', 'exec'), {'__builtins__': __builtins__})\n";
  const size_t size = strlen(format) + 2 * strlen(agent->package_dir) + 1;
  char* code = malloc(size);
  if (!code) return -1;
  snprintf(code, size, format, agent->package_dir, agent->package_dir);
  const int status = py.PyRun_SimpleString(code);
  free(code);
  if (status != 0) return -1;
  agent->link = py.PyImport_ImportModule("hotd_agent.link");
  if (!agent->link) {
    py.PyErr_Print();
    return -1;
  }
  return 0;
}

// Calls hotd_agent.link.<function>(argument bytes) and returns a malloc'd copy of the bytes it
// returns (possibly empty), or NULL on error. Must hold the GIL.
static char* call_link(struct agent* agent, const char* function, const char* data, size_t size, size_t* out_size) {
  char* result = NULL;
  PyObject* callable = py.PyObject_GetAttrString(agent->link, function);
  if (!callable) {
    py.PyErr_Print();
    return NULL;
  }
  PyObject* argument = py.PyBytes_FromStringAndSize(data, (ssize_t)size);
  PyObject* returned = argument ? py.PyObject_CallFunctionObjArgs(callable, argument, NULL) : NULL;
  char* bytes = NULL;
  ssize_t length = 0;
  if (returned && py.PyBytes_AsStringAndSize(returned, &bytes, &length) == 0) {
    result = malloc((size_t)length + 1);
    if (result) {
      memcpy(result, bytes, (size_t)length);
      *out_size = (size_t)length;
    }
  } else {
    py.PyErr_Print();
  }
  if (returned) py.Py_DecRef(returned);
  if (argument) py.Py_DecRef(argument);
  py.Py_DecRef(callable);
  return result;
}

// Reads a boolean attribute of hotd_agent.link (false when missing). Must hold the GIL.
static int link_flag(struct agent* agent, const char* name) {
  PyObject* flag = py.PyObject_GetAttrString(agent->link, name);
  if (!flag) return 0;
  const int value = py.PyObject_IsTrue(flag) == 1;
  py.Py_DecRef(flag);
  return value;
}

// Runs `function` in Python with the GIL and sends what it returns. Returns -1 when the socket
// failed (or is no longer the agent's: a patch ran code that closed it), 1 when Python asked the
// agent to stop, 0 otherwise.
static int exchange(struct agent* agent, const char* function, const char* data, size_t size) {
  if (finalizing()) return 1;
  const PyGILState_STATE gil = py.PyGILState_Ensure();
  size_t reply_size = 0;
  char* reply = call_link(agent, function, data, size, &reply_size);
  const int stop = link_flag(agent, "stop_requested");
  agent->drain_again = link_flag(agent, "drain_again");
  py.PyGILState_Release(gil);
  int status = 0;
  if (reply && reply_size > 0 && send_framed(&agent->daemon, reply, reply_size) != 0) status = -1;
  free(reply);
  return stop ? 1 : status;
}

// --- The agent thread -----------------------------------------------------------------------

static void free_agent(struct agent* agent) {
  free(agent->config);
  free(agent->socket_path);
  free(agent->tcp_address);
  free(agent->token_file);
  free(agent->package_dir);
  free(agent);
}

static void announce_waiting(const struct owned_fd* fd) {
  char body[160];
  const int size = snprintf(body, sizeof body,
                            "{\"jsonrpc\":\"2.0\",\"method\":\"agent/waitingForGil\",\"params\":{\"pid\":%d}}",
                            (int)getpid());
  send_framed(fd, body, (size_t)size);
}

// Tells the Python half the wake pipe's new number and identity. Returns exchange's status.
static int announce_wake_pipe(struct agent* agent) {
  char lines[128];
  wake_pipe_lines(&agent->wake_write, lines, sizeof lines);
  return exchange(agent, "set_wake_pipe", lines, strlen(lines));
}

// Serves one connection until it closes or the program took its descriptor (returns 0), or the
// agent must stop (returns 1).
static int serve_connection(struct agent* agent) {
  announce_waiting(&agent->daemon);
  if (finalizing()) return 1;
  const PyGILState_STATE gil = py.PyGILState_Ensure();
  const int loaded = load_python_half(agent);
  py.PyGILState_Release(gil);
  if (loaded != 0) return 1;

  if (!still_owned(&agent->wake_read) || !still_owned(&agent->wake_write)) renew_wake_pipe(agent);
  char* config = python_config(agent->config, &agent->wake_write);
  if (!config) return 1;
  int status = exchange(agent, "registration", config, strlen(config));
  free(config);
  if (status != 0) return status > 0 ? 1 : 0;
  // Registered: `hotd attach` returns now. Compiling the patcher happens after, not on the first save.
  status = exchange(agent, "warm_up", "", 0);
  if (status != 0) return status > 0 ? 1 : 0;

  struct buffer input = {0};
  int result = 0;
  for (;;) {
    // The program may have closed or reused any of the agent's numbers since the last look (while
    // the agent waited, or in a patch): a lost wake pipe is replaced, a lost connection reconnects.
    if (!still_owned(&agent->daemon)) break;
    if (agent->wake_read.fd >= 0 && (!still_owned(&agent->wake_read) || !still_owned(&agent->wake_write))) {
      renew_wake_pipe(agent);
      status = announce_wake_pipe(agent);
      if (status != 0) {
        result = status > 0;
        break;
      }
    }
    struct pollfd fds[2] = {{.fd = agent->daemon.fd, .events = POLLIN}, {.fd = agent->wake_read.fd, .events = POLLIN}};
    const int ready = poll(fds, 2, agent->drain_again ? DRAIN_AGAIN_MS : -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (!still_owned(&agent->daemon) || (agent->wake_read.fd >= 0 && !still_owned(&agent->wake_read))) continue;
    if (fds[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {  // no writer left: renewed at the top
      release_fd(&agent->wake_write);
      continue;
    }
    if (ready == 0 || (fds[1].revents & POLLIN)) {
      char drain[256];
      while (agent->wake_read.fd >= 0 && read(agent->wake_read.fd, drain, sizeof drain) > 0) {
      }
      status = exchange(agent, "drain", "", 0);
      if (status != 0) {
        result = status > 0;
        break;
      }
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)) || !still_owned(&agent->daemon)) continue;
    char chunk[65536];
    const ssize_t received = recv(agent->daemon.fd, chunk, sizeof chunk, 0);
    if (received < 0 && errno == EINTR) continue;
    if (received <= 0 || buffer_append(&input, chunk, (size_t)received) != 0) break;
    size_t consumed = 0;
    const char* body;
    size_t size;
    int framed;
    while ((framed = next_frame(&input, &consumed, &body, &size)) == 1) {
      status = exchange(agent, "handle", body, size);
      if (status != 0) break;
    }
    if (framed < 0 || status != 0) {
      result = status > 0;
      break;
    }
    memmove(input.data, input.data + consumed, input.size - consumed);
    input.size -= consumed;
  }
  free(input.data);
  return result;
}

static void* agent_main(void* argument) {
  struct agent* agent = argument;
  if (resolve_python_api() != 0) {
    debug("no CPython C API in this process");
    goto done;
  }
  for (int waited = 0; !py.Py_IsInitialized(); waited += 10) {
    if (waited > 30000) goto done;
    sleep_ms(10);
  }
  // Reconnect with growing delays when the daemon goes away: the process keeps running unharmed and
  // patching resumes when a daemon is back.
  long delay = 20;
  for (;;) {
    if (finalizing()) break;
    if (connect_daemon(agent) != 0) {
      sleep_ms(delay);
      delay = delay < 1000 ? delay * 2 : 1000;
      continue;
    }
    delay = 20;
    debug("connected to %s", agent->tcp_address ? agent->tcp_address : agent->socket_path);
    const int stop = serve_connection(agent);
    release_fd(&agent->daemon);
    if (stop) break;
    debug("daemon connection lost; reconnecting");
  }
done:
  debug("agent stopped");
  struct agent* expected = agent;
  atomic_compare_exchange_strong(&running_agent, &expected, NULL);
  release_fd(&agent->wake_read);
  release_fd(&agent->wake_write);
  free_agent(agent);
  atomic_store(&agent_running, 0);
  return NULL;
}

// In a child forked from this process, the agent thread does not exist. Forget it, so that an
// os.register_at_fork hook (hotd_run.py's, or hotd_agent.link's for attached processes) can start
// one of its own; close the child's copies of the daemon connection and the wake pipe, which are the
// parent's (the child's import hook finds the pipe gone and writes nothing until its own agent
// registers).
static void forget_agent_in_child(void) {
  struct agent* agent = atomic_exchange(&running_agent, NULL);
  if (!agent) return;
  release_fd(&agent->daemon);
  release_fd(&agent->wake_read);
  release_fd(&agent->wake_write);
  free_agent(agent);
  atomic_store(&agent_running, 0);
}

static void register_fork_handler(void) { pthread_atfork(NULL, NULL, forget_agent_in_child); }

// Starts the agent thread. `config` holds "key=value" lines: `socket=` (the daemon's socket) or
// `tcp=HOST:PORT` with `token_file=`, `package=` (the hotd_agent Python package directory), and
// settings passed on to Python.
// Returns 0 when started, 1 when an agent already runs in this process, -1 on error.
HOTD_EXPORT int hotd_agent_start(const char* config) {
  static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;
  pthread_once(&fork_handler_once, register_fork_handler);
  int expected = 0;
  if (!atomic_compare_exchange_strong(&agent_running, &expected, 1)) return 1;
  struct agent* agent = calloc(1, sizeof *agent);
  if (!agent) goto fail;
  agent->daemon = agent->wake_read = agent->wake_write = NO_FD;
  agent->config = strdup(config ? config : "");
  agent->socket_path = config_value(agent->config, "socket");
  agent->tcp_address = config_value(agent->config, "tcp");
  agent->token_file = config_value(agent->config, "token_file");
  agent->package_dir = config_value(agent->config, "package");
  if (!(agent->socket_path || (agent->tcp_address && agent->token_file)) || !agent->package_dir) goto fail_agent;
  renew_wake_pipe(agent);

  // No signal may be delivered to the agent thread: the target's handlers expect its own threads.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  running_agent = agent;
  const int created = pthread_create(&thread, &attributes, agent_main, agent);
  pthread_attr_destroy(&attributes);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  if (created != 0) {
    running_agent = NULL;
    release_fd(&agent->wake_read);
    release_fd(&agent->wake_write);
    goto fail_agent;
  }
  return 0;

fail_agent:
  if (agent) free_agent(agent);
fail:
  atomic_store(&agent_running, 0);
  return -1;
}
