#include "daemon.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "daemon_client.hpp"
#include "directory_watcher.hpp"
#include "watch_options.hpp"
#include "hotd/protocol/framing.hpp"
#include "hotd/protocol/json_depth.hpp"
#include "lsp_session.hpp"
#include "patch_coordinator.hpp"
#include "path_map.hpp"
#include "python_syntax_check.hpp"
#include "source_file.hpp"
#include "web_server.hpp"

extern char** environ;

namespace hotd::server {

namespace asio = boost::asio;
using nlohmann::json;
// Unix socket or TCP (agents of processes in other places, after web_server.cpp's upgrade).
using Socket = asio::generic::stream_protocol::socket;

namespace {

constexpr std::size_t kMaxQueuedBytes = 64 * 1024 * 1024;  // a client that stops reading is dropped
// How long a save waits for a process to say whether it runs the file (agent/sync). Short: a process
// that holds the GIL in a long call must not hold up a save of a file it may not run; a late answer
// still gets the save.
constexpr int kSyncTimeoutMs = 1000;

void log_line(const std::string& message) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  std::cerr << stamp << " " << message << std::endl;
}

// A file named by a peer, read without blocking and within the size cap (source_file.hpp); why it
// could not be read is logged, but for a file that is not there (deleted since, a module without one).
std::optional<std::string> read_named_file(const std::string& path) {
  SourceFile file = read_source_file(path);
  if (!file.text && !file.missing) log_line("not reading " + path + ": " + file.error);
  return std::move(file.text);
}

std::string canonical_path(const std::string& path) {
  std::error_code error;
  const auto canonical = std::filesystem::weakly_canonical(std::filesystem::absolute(path, error), error);
  return error ? path : canonical.string();
}

json error_object(int code, const std::string& message) { return {{"code", code}, {"message", message}}; }

// PID_MAX_LIMIT on 64-bit Linux: no process id is larger.
constexpr std::int64_t kMaxPid = 4194304;

// The method of a message, or "" when it has none or it is not a string.
std::string method_of(const json& message) {
  const auto found = message.find("method");
  return found != message.end() && found->is_string() ? found->get<std::string>() : std::string();
}

}  // namespace

class Daemon;

// One peer on the socket: an agent, a command-line client or an editor, decided by its first message.
// A TCP peer (`remote` set) may only be an agent.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Role { Unknown, Agent, Client, Editor };

  Connection(Daemon& daemon, Socket socket, int uid, int pid, std::string remote = {})
      : remote(std::move(remote)), daemon_(daemon), socket_(std::move(socket)), peer_uid_(uid), peer_pid_(pid) {}

  // `buffered`: bytes that arrived before this object took the socket over.
  void start(const std::string& buffered = {}) {
    decoder_.feed(buffered);
    read();
  }
  void send(const json& message);
  void close();

  Role role = Role::Unknown;
  const std::string remote;  // the TCP peer's address, empty on the Unix socket
  PathMap path_map;          // the agent's paths to the editor's, from its registration
  std::shared_ptr<LspSession> editor;  // with Role::Editor
  AgentId agent = 0;
  int agent_pid = 0;
  bool waiting_for_gil = false;
  std::uint64_t next_request_id = 1;
  struct Outstanding {
    std::string key;
    std::uint64_t save;
    std::shared_ptr<asio::steady_timer> timer;
    bool sync = false;  // agent/sync: the answer carries modules, not a patch result
  };
  std::map<std::uint64_t, Outstanding> outstanding;  // requests sent to this agent
  int peer_uid() const { return peer_uid_; }
  int peer_pid() const { return peer_pid_; }
  bool open() const { return open_; }

 private:
  void read();
  void write_next();

  Daemon& daemon_;
  Socket socket_;
  int peer_uid_;
  int peer_pid_;
  protocol::FrameDecoder decoder_;
  std::array<char, 64 * 1024> buffer_{};
  std::deque<std::string> outbox_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool open_ = true;
};

class Daemon : public LspBackend, public WebHost {
 public:
  Daemon(const RuntimeDir& dir, int listen_fd, const DaemonOptions& options)
      : dir_(dir),
        options_(options),
        acceptor_(io_, asio::local::stream_protocol(), listen_fd),
        signals_(io_, SIGINT, SIGTERM),
        watcher_descriptor_(io_),
        coordinator_(read_named_file, canonical_path),
        started_(std::chrono::steady_clock::now()) {}

  int run() {
    raise_open_file_limit();
    accept();
    signals_.async_wait([this](const boost::system::error_code& error, int signal) {
      if (!error) {
        log_line("stopping on signal " + std::to_string(signal));
        stop();
      }
    });
    if (watcher_.fd() >= 0) {
      watcher_descriptor_.assign(::dup(watcher_.fd()));
      wait_for_saves();
    }
    log_line("hotd daemon " + std::to_string(getpid()) + " serving on " + dir_.socket());
    std::string error;
    web_ = WebServer::start(io_, *this, {.agent_listen = options_.listen,
                                         .allowed_origins = options_.allowed_origins,
                                         .info_path = dir_.path + "/web.json",
                                         .max_connections = options_.max_connections},
                            error);
    if (!web_) log_line("web: " + error + " (no WebSocket, /status or TCP agents)");
    io_.run();
    ::unlink(dir_.socket().c_str());
    log_line("stopped");
    return 0;
  }

  void stop() {
    acceptor_.close();
    accept_retry_.cancel();
    if (web_) web_->stop();
    signals_.cancel();
    watcher_descriptor_.close();
    for (const auto& connection : std::set(connections_)) connection->close();
    io_.stop();
  }

  void handle(const std::shared_ptr<Connection>& connection, const std::string& body);
  void closed(const std::shared_ptr<Connection>& connection);
  asio::io_context& io() { return io_; }

  // An editor on any transport: its session receives every save's results until close_editor.
  std::shared_ptr<LspSession> open_editor(LspSession::Send send, LspSession::Close close, const std::string& who) override {
    auto session = std::make_shared<LspSession>(
        *this, std::move(send), std::move(close), [who](const std::string& line) { log_line(who + ": " + line); },
        HOTD_VERSION);
    editors_.insert(session);
    return session;
  }
  void close_editor(const std::shared_ptr<LspSession>& session) override { editors_.erase(session); }
  void processes_changed() {
    if (editors_.empty()) return;
    const json processes = status()["processes"];  // built once for every editor
    for (const auto& editor : std::vector(editors_.begin(), editors_.end())) editor->processes_changed(processes);
  }

  // WebHost
  void adopt_agent(int fd, const std::string& buffered, const std::string& peer) override {
    sockaddr_storage address{};
    socklen_t size = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
    Socket socket(io_, asio::generic::stream_protocol(address.ss_family, IPPROTO_TCP), fd);
    if (!admit(socket.native_handle(), peer)) return;  // `socket` closes it
    auto connection = std::make_shared<Connection>(*this, std::move(socket), -1, 0, peer);
    connections_.insert(connection);
    connection->start(buffered);
  }
  void log(const std::string& line) override { log_line(line); }

  // LspBackend
  json status() override;
  std::set<int> attached_pids() const override {
    std::set<int> pids;
    for (const AgentId id : coordinator_.agents()) pids.insert(coordinator_.agent(id)->pid);
    return pids;
  }
  TicketId save(const std::string& path, const std::string& text) override {
    return start_ticket(coordinator_.save(path, text), path, text);
  }
  std::optional<std::string> previous_version(const std::string& path, std::string& why) override {
    return coordinator_.previous_version(path, why);
  }
  std::optional<TicketId> reload(const std::string& path) override {
    const auto text = read_named_file(path);
    if (!text) return std::nullopt;
    return start_ticket(coordinator_.reload(path, *text), path, *text);
  }
  TicketId start_ticket(PatchCoordinator::SaveOutcome outcome, const std::string& path, const std::string& text) {
    const TicketId ticket = outcome.ticket;
    ticket_texts_[ticket] = text;
    // Posted, so that the editor learns its ticket before any result of it arrives.
    asio::post(io_, [this, outcome = std::move(outcome)] {
      send_dispatches(outcome.dispatches);
      complete(outcome.completed);
    });
    check_python_syntax(ticket, path, text);
    return ticket;
  }
  // CPython's verdict on a save's text, for the editors' diagnostics: on the checker's thread, never
  // delaying the save; only errors reach the sessions.
  void check_python_syntax(TicketId ticket, const std::string& path, const std::string& text) {
    if (editors_.empty()) return;  // nobody to show it to
    python_checker_.check(path, text, [this, ticket, path](PythonSyntaxCheck result, std::string checked) {
      asio::post(io_, [this, ticket, path, result = std::move(result), checked = std::move(checked)] {
        if (!result.not_checked.empty()) log_line("CPython did not check " + path + ": " + result.not_checked);
        if (!result.error) return;
        for (const auto& editor : std::vector(editors_.begin(), editors_.end())) {
          editor->python_syntax_checked(ticket, path, checked, *result.error);
        }
      });
    });
  }
  std::optional<std::string> read_file(const std::string& path) override { return read_named_file(path); }
  bool detach(int pid) override {
    for (const auto& [agent, weak] : agent_connections_) {
      const auto agent_connection = weak.lock();
      if (agent_connection && agent_connection->agent_pid == pid) {
        agent_connection->send({{"jsonrpc", "2.0"}, {"id", agent_connection->next_request_id++}, {"method", "agent/detach"}});
        return true;
      }
    }
    return false;
  }
  void attach(int pid, std::function<void(bool, const std::string&)> done) override;

 private:
  // Each connection takes a descriptor, and the soft limit is often 1024: room for --max-connections
  // and the watcher. Capped, as the daemon's children (the injector) inherit it.
  static void raise_open_file_limit() {
    constexpr rlim_t kWanted = 65536;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= std::min(limit.rlim_max, kWanted)) return;
    limit.rlim_cur = std::min(limit.rlim_max, kWanted);
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) log_line(std::string("cannot raise the open file limit: ") + std::strerror(errno));
  }

  // Over --max-connections, a newcomer gets one error message and is closed; everyone else is
  // served as before. Logged once per episode, not once per refused connection.
  bool admit(int fd, const std::string& who) {
    if (connections_.size() < options_.max_connections) {
      refusing_ = false;
      return true;
    }
    const std::string why = "too many connections (" + std::to_string(options_.max_connections) +
                            ", hotd serve --max-connections): try again when others have closed";
    if (!refusing_) log_line("refused " + who + ": " + why);
    refusing_ = true;
    const std::string refusal = protocol::frame_message(
        json{{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", error_object(-32000, why)}}.dump());
    [[maybe_unused]] const auto ignored = ::send(fd, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    return false;
  }

  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& error, asio::local::stream_protocol::socket socket) {
      if (error == asio::error::operation_aborted) return;
      if (error) {  // out of descriptors, typically: wait for some to close rather than spin
        if (!accept_failing_) log_line("accepting a connection failed: " + error.message() + "; retrying every 100 ms");
        accept_failing_ = true;
        accept_retry_.expires_after(std::chrono::milliseconds(100));
        accept_retry_.async_wait([this](const boost::system::error_code& cancelled) {
          if (!cancelled) accept();
        });
        return;
      }
      if (accept_failing_) log_line("accepting connections again");
      accept_failing_ = false;
      ucred credentials{};
      socklen_t size = sizeof credentials;
      if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0 ||
          (credentials.uid != ::geteuid() && credentials.uid != 0)) {
        log_line("refused a connection from uid " + std::to_string(credentials.uid) + " (pid " +
                 std::to_string(credentials.pid) + "): only uid " + std::to_string(::geteuid()) + " may connect");
        boost::system::error_code ignored;
        socket.close(ignored);
      } else if (admit(socket.native_handle(), "pid " + std::to_string(credentials.pid))) {
        auto connection = std::make_shared<Connection>(
            *this, Socket(io_, asio::generic::stream_protocol(AF_UNIX, 0), socket.release()),
            static_cast<int>(credentials.uid), credentials.pid);
        connections_.insert(connection);
        connection->start();
      }
      accept();
    });
  }

  void wait_for_saves() {
    watcher_descriptor_.async_wait(asio::posix::stream_descriptor::wait_read,
                                   [this](const boost::system::error_code& error) {
                                     if (error) return;
                                     for (const std::string& path : watcher_.read_saves()) file_changed(path, false);
                                     wait_for_saves();
                                   });
  }

  // What each process under `hotd run` asked to be watched, and how.
  struct WatchSet {
    WatchOptions options;
    std::vector<std::string> roots;
    std::shared_ptr<asio::steady_timer> poll_timer;
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> seen;  // polled file -> (mtime ns, size)

    bool wants(const std::string& path) const {
      return std::any_of(roots.begin(), roots.end(), [&](const std::string& root) { return options.wants(root, path); });
    }
  };

  // A watched file changed (inotify, or a poll): a save if some process wants it, after the longest
  // debounce those processes asked for.
  void file_changed(const std::string& path, bool polled) {
    bool wanted = false;
    int debounce_ms = 0;
    for (const auto& [agent, set] : watches_) {
      if ((set.options.poll_seconds > 0) != polled || !set.wants(path)) continue;
      wanted = true;
      debounce_ms = std::max(debounce_ms, set.options.debounce_ms);
    }
    if (!wanted) return;
    if (debounce_ms == 0) return file_saved(path);
    auto& timer = debounces_[path];
    if (!timer) timer = std::make_shared<asio::steady_timer>(io_);
    timer->expires_after(std::chrono::milliseconds(debounce_ms));  // a newer change restarts the wait
    timer->async_wait([this, path, timer](const boost::system::error_code& error) {
      if (error) return;
      debounces_.erase(path);
      file_saved(path);
    });
  }

  // Polling, for file systems where inotify sees nothing (NFS, some container mounts): the files the
  // process loaded, under its watched directories, compared by modification time and size.
  void poll(AgentId agent) {
    const auto found = watches_.find(agent);
    if (found == watches_.end()) return;
    WatchSet& set = found->second;
    for (const std::string& file : coordinator_.files_of(agent)) {
      const auto now = file_stamp(file);
      if (!now) continue;
      const auto previous = set.seen.find(file);
      const bool changed = previous != set.seen.end() && previous->second != *now;
      set.seen[file] = *now;
      if (changed) file_changed(file, true);
    }
    set.poll_timer->expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(set.options.poll_seconds)));
    set.poll_timer->async_wait([this, agent](const boost::system::error_code& error) {
      if (!error) poll(agent);
    });
  }

  // (modification time in ns, size) of a file, for polling.
  static std::optional<std::pair<std::int64_t, std::int64_t>> file_stamp(const std::string& file) {
    std::error_code error;
    const auto time = std::filesystem::last_write_time(file, error);
    const auto size = error ? 0 : static_cast<std::int64_t>(std::filesystem::file_size(file, error));
    if (error) return std::nullopt;
    return std::pair{static_cast<std::int64_t>(time.time_since_epoch().count()), size};
  }

  // A polled file's stamp is taken when its process reports it, before the report is compared with
  // the disk: a save before that is caught up from the text the process runs, one after is a change
  // for the next poll. (Taken at the first poll instead, a save in between was lost.)
  void poll_base(AgentId agent, const std::vector<LoadedModule>& modules) {
    const auto found = watches_.find(agent);
    if (found == watches_.end() || !found->second.poll_timer) return;
    for (const LoadedModule& module : modules) {
      const std::string key = canonical_path(module.file);
      if (const auto stamp = file_stamp(key)) found->second.seen.try_emplace(key, *stamp);
    }
  }

  // Starts watching for a process; returns what is watched, for its registration reply.
  json start_watching(AgentId id, int pid, const std::vector<std::string>& roots, const WatchOptions& options) {
    WatchSet& set = watches_[id];
    set.options = options;
    set.roots = roots;
    int directories = 0;
    for (const std::string& root : roots) {
      if (options.poll_seconds > 0) break;
      std::string error;
      const int added = watcher_.watch(id, root, error);
      if (!error.empty()) log_line("process " + std::to_string(pid) + ": " + error);
      directories += std::max(added, 0);
    }
    if (options.poll_seconds > 0 && !roots.empty()) {
      set.poll_timer = std::make_shared<asio::steady_timer>(io_);
      poll(id);
    }
    return {{"roots", roots}, {"directories", directories},
            {"mode", options.poll_seconds > 0 ? "poll" : "inotify"}, {"options", options.to_json()}};
  }

  // Files saved while no daemon was there (or just before the process reported them): what the
  // process runs is older than the disk. A process that watches the file gets the save it missed, and
  // nobody else does (what a process reports decides only what it is sent); otherwise the log says
  // how to apply it. Remote agents have none (PatchCoordinator reads no file for them).
  void catch_up(AgentId agent, int pid, const std::vector<std::string>& changed, const std::string& being_saved = {}) {
    for (const std::string& path : changed) {
      if (canonical_path(path) == being_saved) continue;  // the save that asked for the report applies it
      if (const auto set = watches_.find(agent); set != watches_.end() && set->second.wants(path)) {
        log_line(path + " changed since process " + std::to_string(pid) + " loaded it: applying the version on disk");
        file_saved(path, agent);
      } else {
        log_line(path + " changed since process " + std::to_string(pid) +
                 " loaded it; it is not watched: the next save (or `hotd patch`) applies it");
      }
    }
  }

  // Also for a file no process has reported: one may have imported it since its last report.
  // `only_for`: a catch-up, for that process alone.
  void file_saved(const std::string& path, std::optional<AgentId> only_for = std::nullopt) {
    const auto text = read_named_file(path);
    if (!text) return;  // deleted right after the save (the next save brings it back), or not a source file
    apply_save(path, *text, nullptr, nullptr, false, true, only_for);
  }

  // Sends a save (or with `reload`, a whole-module reload of the text on disk) to every process running
  // the file (`only_for`: that process alone); `waiter` (a client) gets the ticket's result. A save
  // `from_watcher` that no process runs is told to nobody.
  void apply_save(const std::string& path, const std::string& text, const std::shared_ptr<Connection>& waiter,
                  const json* request_id, bool reload = false, bool from_watcher = false,
                  std::optional<AgentId> only_for = std::nullopt) {
    auto outcome = reload ? coordinator_.reload(path, text) : coordinator_.save(path, text, only_for);
    ticket_texts_[outcome.ticket] = text;
    if (waiter && request_id) waiters_[outcome.ticket] = {waiter, *request_id};
    if (from_watcher) watcher_tickets_.insert(outcome.ticket);
    send_dispatches(outcome.dispatches);
    complete(outcome.completed);
    check_python_syntax(outcome.ticket, path, text);
  }

  void send_dispatches(const std::vector<Dispatch>& dispatches) {
    for (const Dispatch& dispatch : dispatches) {
      const auto found = agent_connections_.find(dispatch.agent);
      const auto connection = found == agent_connections_.end() ? nullptr : found->second.lock();
      if (!connection || !connection->open()) {
        auto outcome = coordinator_.on_result(dispatch.agent, dispatch.key, dispatch.save,
                                              json{{"error", "the process is not connected"}}, true);
        send_dispatches(outcome.dispatches);
        complete(outcome.completed);
        continue;
      }
      const std::uint64_t id = connection->next_request_id++;
      const bool sync = dispatch.method == "agent/sync";
      auto timer = std::make_shared<asio::steady_timer>(
          io_, std::chrono::milliseconds(sync ? std::min(kSyncTimeoutMs, options_.patch_timeout_ms) : options_.patch_timeout_ms));
      connection->outstanding[id] = {dispatch.key, dispatch.save, timer, sync};
      json params = dispatch.params;
      if (!connection->path_map.empty()) params["file"] = connection->path_map.to_remote(params["file"]);
      const AgentId agent = dispatch.agent;
      timer->async_wait([this, agent, sync, key = dispatch.key, save = dispatch.save](const boost::system::error_code& error) {
        if (error) return;
        if (sync) {
          log_line("process of agent " + std::to_string(agent) + " did not say in time whether it runs " + key +
                   "; it gets the save if its answer says so");
          return complete(coordinator_.on_sync_timeout(agent, save));
        }
        log_line("process of agent " + std::to_string(agent) + " did not answer a patch of " + key + " in time");
        complete(coordinator_.on_timeout(agent, key, save));
      });
      connection->send({{"jsonrpc", "2.0"}, {"id", id}, {"method", dispatch.method}, {"params", params}});
    }
  }

  void complete(const std::vector<TicketResult>& results) {
    for (const TicketResult& result : results) {
      const json summary = save_summary_json(result);
      const auto text = ticket_texts_.find(result.ticket);
      const std::string saved = text == ticket_texts_.end() ? std::string() : std::move(text->second);
      if (text != ticket_texts_.end()) ticket_texts_.erase(text);
      // The watcher sees every .py file saved under a watched directory: one no process runs (its tests,
      // its scripts) is news to nobody.
      if (watcher_tickets_.erase(result.ticket) > 0 && result.processes.empty()) continue;
      // A copy: a session whose editor stopped reading is closed (and removed) while sending.
      for (const auto& editor : std::vector(editors_.begin(), editors_.end())) editor->save_completed(result, saved);
      log_line("save of " + result.file + ": " + (result.ok ? "applied" : "not fully applied") + " in " +
               std::to_string(result.processes.size()) + " process(es)");
      const auto waiter = waiters_.find(result.ticket);
      if (waiter == waiters_.end()) continue;
      if (auto client = waiter->second.connection.lock()) {
        client->send({{"jsonrpc", "2.0"}, {"id", waiter->second.request_id}, {"result", summary}});
      }
      waiters_.erase(waiter);
    }
  }

  void handle_agent(const std::shared_ptr<Connection>& connection, const json& message);
  void modules_reported(const Connection& connection, const json& params, const std::string& being_saved = {});
  void synced(const std::shared_ptr<Connection>& connection, const Connection::Outstanding& sync, const json& result);
  std::vector<LoadedModule> loaded_modules(const Connection& connection, const json& params);
  void handle_client(const std::shared_ptr<Connection>& connection, const json& message);

  const RuntimeDir& dir_;
  DaemonOptions options_;
  asio::io_context io_;
  asio::local::stream_protocol::acceptor acceptor_;
  asio::steady_timer accept_retry_{io_};
  bool accept_failing_ = false;  // since the last accept that succeeded
  bool refusing_ = false;        // over --max-connections since the last admitted connection
  asio::signal_set signals_;
  DirectoryWatcher watcher_;
  asio::posix::stream_descriptor watcher_descriptor_;
  PatchCoordinator coordinator_;
  std::chrono::steady_clock::time_point started_;
  std::set<std::shared_ptr<Connection>> connections_;
  std::set<std::shared_ptr<LspSession>> editors_;  // on the socket and on WebSockets
  std::map<AgentId, std::weak_ptr<Connection>> agent_connections_;
  std::map<AgentId, WatchSet> watches_;
  std::map<std::string, std::shared_ptr<asio::steady_timer>> debounces_;  // per file, while a debounce runs
  struct Waiter {
    std::weak_ptr<Connection> connection;
    json request_id;
  };
  std::map<TicketId, Waiter> waiters_;
  std::map<TicketId, std::string> ticket_texts_;  // the text of each save in progress, for editors' diagnostics
  std::set<TicketId> watcher_tickets_;             // saves the file watcher made, in progress
  PythonSyntaxChecker python_checker_;  // after io_: its thread stops before io_ goes
  std::unique_ptr<WebServer> web_;  // after io_: destroyed first
};

json Daemon::status() {
  json processes = json::array();
  for (const AgentId id : coordinator_.agents()) {
    json process = coordinator_.describe_agent(id);
    const auto connection = agent_connections_.count(id) ? agent_connections_[id].lock() : nullptr;
    if (connection && !connection->remote.empty()) process["remote"] = connection->remote;
    processes.push_back(std::move(process));
  }
  int clients = 0;
  const auto editors = std::count_if(editors_.begin(), editors_.end(), [](const auto& e) { return e->initialized(); });
  json waiting = json::array();
  for (const auto& connection : connections_) {
    if (connection->role == Connection::Role::Client) ++clients;
    // Local pids only, as `hotd attach` reads them.
    if (connection->role == Connection::Role::Agent && connection->waiting_for_gil && !connection->agent &&
        connection->remote.empty()) {
      waiting.push_back(connection->agent_pid);
    }
  }
  const auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return {{"pid", ::getpid()},
          {"version", HOTD_VERSION},
          {"uptime_seconds", uptime},
          {"socket", dir_.socket()},
          {"runtime_dir", dir_.path},
          {"clients", clients},
          {"editors", editors},
          {"watched_directories", watcher_.directory_count()},
          {"processes", processes},
          {"waiting_for_gil", waiting}};
}

// --- Connection -------------------------------------------------------------------------------

void Connection::read() {
  auto self = shared_from_this();
  socket_.async_read_some(asio::buffer(buffer_), [this, self](const boost::system::error_code& error, std::size_t size) {
    if (error) {
      close();
      return;
    }
    decoder_.feed(std::string_view(buffer_.data(), size));
    while (auto body = decoder_.next()) {
      daemon_.handle(self, *body);
      if (!open_) return;
    }
    if (decoder_.failed()) {
      log_line("closing connection of " + (remote.empty() ? "pid " + std::to_string(peer_pid_) : remote) + ": " +
               decoder_.error());
      send({{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", error_object(-32700, decoder_.error())}});
      close();
      return;
    }
    read();
  });
}

void Connection::send(const json& message) {
  if (!open_) return;
  std::string framed = protocol::frame_message(message.dump(-1, ' ', false, json::error_handler_t::replace));
  queued_bytes_ += framed.size();
  if (queued_bytes_ > kMaxQueuedBytes) {
    log_line("closing connection of pid " + std::to_string(peer_pid_) + ": it stopped reading");
    close();
    return;
  }
  outbox_.push_back(std::move(framed));
  if (!writing_) write_next();
}

void Connection::write_next() {
  if (outbox_.empty() || !open_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(outbox_.front()), [this, self](const boost::system::error_code& error, std::size_t) {
    if (error) {
      close();
      return;
    }
    queued_bytes_ -= outbox_.front().size();
    outbox_.pop_front();
    write_next();
  });
}

void Connection::close() {
  if (!open_) return;
  open_ = false;
  boost::system::error_code ignored;
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
  daemon_.closed(shared_from_this());
}

// --- Dispatch ---------------------------------------------------------------------------------

void Daemon::closed(const std::shared_ptr<Connection>& connection) {
  connections_.erase(connection);
  if (connection->editor) close_editor(connection->editor);
  for (auto& [id, outstanding] : connection->outstanding) outstanding.timer->cancel();
  if (connection->agent) {
    const AgentId agent = connection->agent;
    log_line("process " + std::to_string(connection->agent_pid) + " disconnected");
    agent_connections_.erase(agent);
    watcher_.unwatch(agent);
    if (const auto found = watches_.find(agent); found != watches_.end() && found->second.poll_timer) {
      found->second.poll_timer->cancel();
    }
    watches_.erase(agent);
    complete(coordinator_.remove_agent(agent));
    processes_changed();
  }
}

// The first message decides the role: `agent/...` is an agent, `hotd/...` the command line, and
// anything else an editor, whose session enforces LSP's rules (starting with `initialize`).
void Daemon::handle(const std::shared_ptr<Connection>& connection, const std::string& body) {
  if (connection->role == Connection::Role::Editor) return connection->editor->receive(body);
  if (!protocol::json_depth_within(body)) {
    log_line("refused a message nested deeper than " + std::to_string(protocol::kMaxJsonDepth) + " levels");
    return connection->send({{"jsonrpc", "2.0"}, {"id", nullptr},
                             {"error", error_object(-32600, "message nested deeper than " +
                                                                std::to_string(protocol::kMaxJsonDepth) + " levels")}});
  }
  const json message = json::parse(body, nullptr, false);
  const std::string method = message.is_object() ? method_of(message) : std::string();
  if (connection->role == Connection::Role::Unknown) {
    if (!connection->remote.empty() && !method.starts_with("agent/")) {
      log_line("closing the TCP connection of " + connection->remote + ": only agents connect over TCP");
      return connection->close();
    }
    if (method.starts_with("agent/")) {
      connection->role = Connection::Role::Agent;
    } else if (method.starts_with("hotd/")) {
      connection->role = Connection::Role::Client;
    } else {  // an editor, or something malformed: LspSession answers it either way
      connection->role = Connection::Role::Editor;
      const std::weak_ptr<Connection> weak = connection;
      connection->editor = open_editor(
          [weak](const json& reply) {
            if (const auto peer = weak.lock()) peer->send(reply);
          },
          [weak] {
            if (const auto peer = weak.lock()) peer->close();
          },
          "editor (pid " + std::to_string(connection->peer_pid()) + ")");
      return connection->editor->receive(body);
    }
  }
  if (!message.is_object()) {
    log_line("pid " + std::to_string(connection->peer_pid()) + " sent a message that is not a JSON object");
    connection->send({{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", error_object(-32700, "invalid JSON")}});
    return;
  }
  try {
    if (connection->role == Connection::Role::Agent) {
      handle_agent(connection, message);
    } else {
      handle_client(connection, message);
    }
  } catch (const json::exception& error) {  // a field of the wrong type
    log_line("pid " + std::to_string(connection->peer_pid()) + " sent invalid params for " + method + ": " + error.what());
    if (message.contains("id") && !method.empty()) {
      connection->send({{"jsonrpc", "2.0"}, {"id", message["id"]}, {"error", error_object(-32602, error.what())}});
    }
  }
}

namespace {

// The process an agent speaks for. On the Unix socket the kernel says (SO_PEERCRED, in the daemon's pid
// namespace), whatever the agent claims: a claimed pid of another process would make `hotd attach` of
// that process answer "already attached". Over TCP only the agent knows its pid (in its own place),
// which must at least be one.
std::optional<int> agent_pid(const Connection& connection, const json& params, std::string& why) {
  if (connection.remote.empty()) return connection.peer_pid();
  const auto pid = params.find("pid");
  if (pid == params.end() || !pid->is_number_integer() || pid->get<std::int64_t>() < 1 ||
      pid->get<std::int64_t>() > kMaxPid) {
    why = "params.pid must be a process id (1 to " + std::to_string(kMaxPid) + ")";
    return std::nullopt;
  }
  return pid->get<int>();
}

}  // namespace

void Daemon::handle_agent(const std::shared_ptr<Connection>& connection, const json& message) {
  const std::string method = method_of(message);
  const json params = message.value("params", json::object());
  std::string why;
  if (method == "agent/waitingForGil") {
    const auto pid = agent_pid(*connection, params, why);
    if (!pid) return log_line("ignored agent/waitingForGil from " + connection->remote + ": " + why);
    connection->waiting_for_gil = true;
    connection->agent_pid = *pid;
    return;
  }
  if (method == "agent/register") {
    if (connection->agent) {
      connection->send({{"jsonrpc", "2.0"}, {"id", message.value("id", json())}, {"error", error_object(-32600, "already registered")}});
      return;
    }
    const auto pid = agent_pid(*connection, params, why);
    if (!pid) {
      log_line("agent at " + connection->remote + " not registered: " + why);
      return connection->send({{"jsonrpc", "2.0"}, {"id", message.value("id", json())}, {"error", error_object(-32602, why)}});
    }
    AgentInfo info;
    info.pid = *pid;
    info.remote = !connection->remote.empty();
    info.python_version = params.value("python_version", "");
    info.executable = params.value("executable", "");
    info.cwd = params.value("cwd", "");
    info.launcher = params.value("launcher", "attach");
    info.argv = params.value("argv", std::vector<std::string>{});
    for (const json& mapping : params.value("path_map", json::array())) {
      auto prefix = PathMap::parse(mapping.get<std::string>(), why);
      if (!prefix) {
        log_line("process " + std::to_string(info.pid) + " not registered: " + why);
        return connection->send({{"jsonrpc", "2.0"}, {"id", message.value("id", json())}, {"error", error_object(-32602, why)}});
      }
      connection->path_map.add(std::move(*prefix));
    }
    for (const std::string& directory : params.value("watch", std::vector<std::string>{})) {
      info.watch.push_back(connection->path_map.to_local(directory));
    }
    const AgentId id = coordinator_.add_agent(info);
    connection->agent = id;
    connection->agent_pid = info.pid;
    agent_connections_[id] = connection;
    const std::vector<LoadedModule> modules = loaded_modules(*connection, params);
    auto loaded = coordinator_.modules_loaded(id, modules);
    const json watching =
        start_watching(id, info.pid, info.watch, WatchOptions::from_json(params.value("watch_options", json::object())));
    log_line("process " + std::to_string(info.pid) + (connection->remote.empty() ? "" : " at " + connection->remote) +
             " registered: python " + info.python_version + ", " + std::to_string(modules.size()) + " module(s)");
    connection->send({{"jsonrpc", "2.0"}, {"id", message.value("id", json())},
                      {"result", {{"agent", id}, {"watching", watching}}}});
    catch_up(id, info.pid, loaded.changed_on_disk);
    processes_changed();
    return;
  }
  if (method == "agent/imported") {
    if (!connection->agent) return;
    modules_reported(*connection, params);
    return;
  }
  if (method.empty() && message.contains("id") && message["id"].is_number_unsigned()) {
    const auto found = connection->outstanding.find(message["id"].get<std::uint64_t>());
    if (found == connection->outstanding.end()) return;
    const Connection::Outstanding outstanding = found->second;
    connection->outstanding.erase(found);
    outstanding.timer->cancel();
    if (outstanding.sync) return synced(connection, outstanding, message.value("result", json::object()));
    json result = message.contains("result") ? message["result"] : json{{"error", message.value("error", json())}};
    auto outcome = coordinator_.on_result(connection->agent, outstanding.key, outstanding.save, result);
    send_dispatches(outcome.dispatches);
    complete(outcome.completed);
    return;
  }
  if (message.contains("id") && !method.empty()) {
    connection->send({{"jsonrpc", "2.0"}, {"id", message["id"]}, {"error", error_object(-32601, "unknown method " + method)}});
  }
}

// Modules an agent reported (`agent/imported`, or the answer to a sync for `being_saved`): saves that
// waited for them go out, and files changed on disk since are caught up.
void Daemon::modules_reported(const Connection& connection, const json& params, const std::string& being_saved) {
  const std::vector<LoadedModule> modules = loaded_modules(connection, params);
  poll_base(connection.agent, modules);
  auto loaded = coordinator_.modules_loaded(connection.agent, modules);
  send_dispatches(loaded.dispatches);
  complete(loaded.completed);
  catch_up(connection.agent, connection.agent_pid, loaded.changed_on_disk, being_saved);
}

// The answer to an agent/sync: record what the process imported, then plan the save for it. While the
// file's import is still running there, its report is awaited (as long as a patch may take).
void Daemon::synced(const std::shared_ptr<Connection>& connection, const Connection::Outstanding& sync,
                    const json& result) {
  if (!result.is_object()) return complete(coordinator_.on_sync_timeout(connection->agent, sync.save));
  modules_reported(*connection, result, sync.key);
  const bool importing = result.value("importing", false);
  auto outcome = coordinator_.on_synced(connection->agent, sync.key, sync.save, importing);
  send_dispatches(outcome.dispatches);
  complete(outcome.completed);
  if (!importing) return;
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(options_.patch_timeout_ms));
  timer->async_wait([this, timer, agent = connection->agent, save = sync.save](const boost::system::error_code& error) {
    if (!error) complete(coordinator_.on_sync_timeout(agent, save));
  });
}

// The modules of an `agent/register` or `agent/imported`, with the editor's paths. A text over the
// agent's own cap is not taken (it sends none that large): it would cost the daemon a parse of any size.
std::vector<LoadedModule> Daemon::loaded_modules(const Connection& connection, const json& params) {
  std::vector<LoadedModule> modules;
  for (const json& module : params.value("modules", json::array())) {
    std::optional<std::string> source;
    if (module.contains("source")) source = module["source"].get<std::string>();
    if (source && source->size() > kMaxSourceBytes) {
      log_line("not taking the text of " + module.value("file", "") + " that process " +
               std::to_string(connection.agent_pid) + " reported: larger than 8 MiB");
      source.reset();
    }
    parser::RunningDrift drift;
    for (const json& name : module.value("differs", json::array())) drift.differs.insert(name.get<std::string>());
    for (const json& name : module.value("missing", json::array())) drift.missing.insert(name.get<std::string>());
    modules.push_back({module.value("name", ""), connection.path_map.to_local(module.value("file", "")),
                       std::move(source), std::move(drift)});
  }
  return modules;
}

void Daemon::handle_client(const std::shared_ptr<Connection>& connection, const json& message) {
  const std::string method = method_of(message);
  const json id = message.value("id", json());
  const json params = message.value("params", json::object());
  auto reply = [&](const json& result) { connection->send({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}}); };
  auto fail = [&](int code, const std::string& text) {
    connection->send({{"jsonrpc", "2.0"}, {"id", id}, {"error", error_object(code, text)}});
  };
  if (method == "hotd/ping") {
    reply({{"pid", ::getpid()}, {"version", HOTD_VERSION}});
  } else if (method == "hotd/status") {
    reply(status());
  } else if (method == "hotd/listProcesses") {
    reply({{"processes", status()["processes"]}});
  } else if (method == "hotd/patchFile") {
    if (!params.contains("path") || !params["path"].is_string()) return fail(-32602, "params.path (a string) is required");
    const std::string path = params["path"];
    if (params.contains("text") && params["text"].is_string()) {
      return apply_save(path, params["text"].get<std::string>(), connection, &id);
    }
    SourceFile file = read_source_file(path);
    if (!file.text) return fail(-32602, "cannot read " + path + ": " + file.error);
    apply_save(path, *file.text, connection, &id);
  } else if (method == "hotd/log") {
    json entries = json::array();
    const std::string path = params.contains("path") && params["path"].is_string() ? params["path"].get<std::string>() : "";
    for (const HistoryEntry& entry : coordinator_.history(path)) {
      json processes = json::array();
      for (const auto& [pid, status] : entry.processes) processes.push_back({{"pid", pid}, {"status", status}});
      entries.push_back({{"version", entry.version}, {"file", entry.file}, {"origin", entry.origin},
                         {"time_ms", entry.time_ms}, {"completed", entry.completed},
                         {"syntax_error", entry.syntax_error}, {"processes", processes},
                         {"lines", std::count(entry.text->begin(), entry.text->end(), '\n')}});
    }
    reply({{"entries", entries}});
  } else if (method == "hotd/revert") {
    if (!params.contains("path") || !params["path"].is_string()) return fail(-32602, "params.path (a string) is required");
    std::string why;
    const auto text = coordinator_.previous_version(params["path"], why);
    if (!text) return fail(-32602, why);
    apply_save(params["path"], *text, connection, &id);
  } else if (method == "hotd/reload") {
    std::string path = params.value("path", std::string());
    if (path.empty() && params.contains("module")) {
      const std::string module = params["module"];
      const auto file = coordinator_.file_of_module(module);
      if (!file) return fail(-32602, "no attached process has loaded a module named " + module);
      path = *file;
    }
    if (path.empty()) return fail(-32602, "params.path or params.module (a string) is required");
    SourceFile file = read_source_file(path);
    if (!file.text) return fail(-32602, "cannot read " + path + ": " + file.error);
    apply_save(path, *file.text, connection, &id, true);
  } else if (method == "hotd/detach") {
    const int pid = params.value("pid", 0);
    if (detach(pid)) return reply({{"pid", pid}, {"detached", true}});
    fail(-32602, "no attached process with pid " + std::to_string(pid));
  } else if (method == "hotd/stop") {
    reply({{"stopping", true}});
    log_line("stop requested by pid " + std::to_string(connection->peer_pid()));
    asio::post(io_, [this] { stop(); });
  } else if (!id.is_null()) {
    fail(-32601, "unknown method " + method);
  }
}

// `hotd attach <pid>` as a child: its output (stdout and stderr) and exit status go to `done`.
void Daemon::attach(int pid, std::function<void(bool, const std::string&)> done) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return done(false, std::string("cannot create a pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  const std::string executable = cli::self_executable();
  std::string pid_text = std::to_string(pid);
  char* argv[] = {const_cast<char*>(executable.c_str()), const_cast<char*>("attach"), pid_text.data(), nullptr};
  pid_t child = 0;
  const int spawned = posix_spawn(&child, executable.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    return done(false, "cannot run " + executable + " attach: " + std::strerror(spawned));
  }
  log_line("running hotd attach " + pid_text + " (pid " + std::to_string(child) + ")");
  struct Output {
    asio::posix::stream_descriptor pipe;
    std::array<char, 4096> buffer{};
    std::string text;
  };
  auto output = std::make_shared<Output>(Output{asio::posix::stream_descriptor(io_, pipe_fds[0])});
  auto read = std::make_shared<std::function<void()>>();
  *read = [output, read, child, done = std::move(done)] {
    output->pipe.async_read_some(asio::buffer(output->buffer), [output, read, child, done](
                                                                   const boost::system::error_code& error, std::size_t size) {
      if (!error) {
        if (output->text.size() < 64 * 1024) output->text.append(output->buffer.data(), size);
        return (*read)();
      }
      int status = 0;  // the pipe closed: the child is exiting
      while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      while (!output->text.empty() && output->text.back() == '\n') output->text.pop_back();
      done(WIFEXITED(status) && WEXITSTATUS(status) == 0, output->text);
      *read = nullptr;  // breaks the cycle read -> lambda -> read
    });
  };
  (*read)();
}

int run_daemon(const RuntimeDir& dir, InstanceLock lock, int listen_fd, const DaemonOptions& options) {
  ::signal(SIGPIPE, SIG_IGN);
  if (!lock.record_pid()) log_line("cannot record the daemon's pid in " + dir.lock());
  int status = 0;
  {
    Daemon daemon(dir, listen_fd, options);
    status = daemon.run();
  }
#if defined(__SANITIZE_ADDRESS__)
  // The end-of-process leak check, run while the lock is held: `hotd stop` returns once the lock is
  // released, and a caller that then kills what is left (a test's cleanup) would interrupt the check
  // as it stops the threads, which LeakSanitizer reports as "Unable to get registers from thread".
  __lsan_do_leak_check();
#endif
  (void)lock;  // held until here
  return status;
}

}  // namespace hotd::server
