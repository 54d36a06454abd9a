// One editor speaking LSP to the daemon, over the Unix socket or a WebSocket. The only class that
// knows LSP: it enforces the message rules in one place (JSON-RPC shape, nothing before `initialize`,
// MethodNotFound, exactly one reply per request, `$/cancelRequest`, `shutdown`/`exit`, invalid
// params), keeps the editor's buffers, and turns save results into diagnostics and notifications.
// No Asio and no sockets: the transport hands in message bodies and takes out JSON to send; the
// daemon's core is reached through LspBackend.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "hotd/parser/python_document.hpp"
#include "lsp_document.hpp"
#include "patch_coordinator.hpp"
#include "python_syntax_check.hpp"

namespace hotd::server {

// JSON-RPC and LSP error codes used by hotd.
namespace lsp_error {
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kServerNotInitialized = -32002;
inline constexpr int kRequestFailed = -32803;
inline constexpr int kRequestCancelled = -32800;
}  // namespace lsp_error

// What an editor session needs from the daemon. Callbacks run on the daemon's thread.
class LspBackend {
 public:
  virtual ~LspBackend() = default;
  // The daemon's status, as `hotd status --json` prints it.
  virtual nlohmann::json status() = 0;
  // The pids of the processes attached now (code lenses ask on every edit: not the whole status).
  virtual std::set<int> attached_pids() const = 0;
  // A save of `path` through PatchCoordinator::save. Its result reaches every editor later through
  // LspSession::save_completed, never before this returns.
  virtual TicketId save(const std::string& path, const std::string& text) = 0;
  virtual std::optional<std::string> read_file(const std::string& path) = 0;
  // Asks the process to detach; false when no attached process has this pid.
  virtual bool detach(int pid) = 0;
  // Runs `hotd attach <pid>`; `done(succeeded, output)` when it has exited.
  virtual void attach(int pid, std::function<void(bool succeeded, const std::string& output)> done) = 0;
  // `hotd reload` of `path` through PatchCoordinator::reload, like save; nullopt when it cannot be read.
  virtual std::optional<TicketId> reload(const std::string& path) = 0;
  // The version `hotd revert` would send (PatchCoordinator::previous_version); nullopt with `why`.
  virtual std::optional<std::string> previous_version(const std::string& path, std::string& why) = 0;
};

// The result of a save as `hotd patch --json` prints it and `hotd/patched` carries it.
nlohmann::json save_summary_json(const TicketResult& result);

class LspSession {
 public:
  // Buffers one editor may keep open in the daemon (docs/SECURITY.md). Past them a buffer is not
  // kept, and the editor is told once; saving it still patches (with the text, or read from disk).
  static constexpr std::size_t kMaxOpenDocuments = 1000;
  static constexpr std::size_t kMaxOpenDocumentBytes = std::size_t{256} << 20;

  using Send = std::function<void(const nlohmann::json& message)>;
  using Close = std::function<void()>;
  using Log = std::function<void(const std::string& line)>;

  // `send` queues a message to the editor; `close` ends the connection (after `exit`).
  LspSession(LspBackend& backend, Send send, Close close, Log log, std::string server_version);

  // One message body as it arrived (not yet parsed).
  void receive(const std::string& body);
  // A save finished (from this editor, another one, the file watcher or `hotd patch`). `text` is
  // what was saved, for positions of diagnostics.
  void save_completed(const TicketResult& result, const std::string& text);
  // CPython could not compile `text`, the text of save `ticket` of `path`: its error joins that save's
  // diagnostics, now or when the save completes. Dropped when a newer save of `path` completed.
  void python_syntax_checked(TicketId ticket, const std::string& path, const std::string& text,
                             const PythonSyntaxError& error);

  // A process registered or went away: `hotd/processesChanged` with the attached processes (as
  // hotd.listProcesses lists them), so that editors show them without polling.
  void processes_changed(const nlohmann::json& processes);

  bool initialized() const { return state_ == State::Running; }

 private:
  enum class State { Uninitialized, Running, ShuttingDown };

  // A request's answer: a result, or an error code and message.
  struct Outcome {
    nlohmann::json result;
    int code = 0;
    std::string message;
    static Outcome ok(nlohmann::json value) { return {std::move(value), 0, {}}; }
    static Outcome error(int code, std::string message) { return {nullptr, code, std::move(message)}; }
  };
  // Handlers answer now (an Outcome) or later through finish() (nullopt: the request stays pending).
  using RequestHandler = std::optional<Outcome> (LspSession::*)(const nlohmann::json& id, const nlohmann::json& params);
  using NotificationHandler = void (LspSession::*)(const nlohmann::json& params);

  // The editor's answer to a request hotd sent: a `result` or an `error`.
  using ResponseHandler = std::function<void(const nlohmann::json& response)>;

  void dispatch(const nlohmann::json& message);
  void request(const std::string& method, nlohmann::json params, ResponseHandler on_response);
  void on_response(const nlohmann::json& id, const nlohmann::json& response);
  void finish(const nlohmann::json& id, const Outcome& outcome);
  void send_error(const nlohmann::json& id, int code, const std::string& message);
  void notify(const std::string& method, nlohmann::json params);

  std::optional<Outcome> on_initialize(const nlohmann::json& id, const nlohmann::json& params);
  std::optional<Outcome> on_shutdown(const nlohmann::json& id, const nlohmann::json& params);
  std::optional<Outcome> on_execute_command(const nlohmann::json& id, const nlohmann::json& params);
  void on_initialized(const nlohmann::json& params);
  void on_exit(const nlohmann::json& params);
  void on_cancel(const nlohmann::json& params);
  void on_did_open(const nlohmann::json& params);
  void on_did_change(const nlohmann::json& params);
  void on_did_save(const nlohmann::json& params);
  void on_did_close(const nlohmann::json& params);

  std::optional<Outcome> command_patch_file(const nlohmann::json& id, const nlohmann::json& arguments);
  std::optional<Outcome> command_reload_module(const nlohmann::json& id, const nlohmann::json& arguments);
  std::optional<Outcome> command_revert(const nlohmann::json& id, const nlohmann::json& arguments);
  std::optional<Outcome> on_code_action(const nlohmann::json& id, const nlohmann::json& params);
  std::optional<Outcome> on_code_lens(const nlohmann::json& id, const nlohmann::json& params);
  // Remembers the definitions a save changed in each process, for the code lenses.
  void record_patched(const TicketResult& result);
  std::optional<Outcome> command_attach(const nlohmann::json& id, const nlohmann::json& arguments,
                                        const nlohmann::json& work_done_token);
  // Runs `hotd attach`, with `$/progress` on `token` unless it is null.
  void run_attach(const nlohmann::json& id, int pid, const nlohmann::json& token);
  Outcome command_list_processes(const nlohmann::json& arguments) const;
  std::optional<Outcome> command_detach(const nlohmann::json& arguments);

  // The diagnostics of the last completed save of a file, kept to publish them again with CPython's error.
  std::map<std::string, std::string> last_completed_text_;  // by file: the text of the last save shown
  struct PublishedSave {
    TicketId ticket = 0;
    nlohmann::json diagnostics;   // hotd's own: syntax errors of the parser, rude edits, patch failures
    bool nothing_applied = false;  // the parser refused the text, or no process applied any of it
    nlohmann::json python_error;  // CPython's diagnostic (message without suffix), or null
  };
  nlohmann::json save_diagnostics(const TicketResult& result, const std::string& text) const;
  void publish_diagnostics(const std::string& uri, const PublishedSave& save);
  // Whether `uri` may hold `bytes` of text within the limits on open buffers; when not, the buffer
  // is dropped and the editor told (once per session).
  bool keep_document(const std::string& uri, std::size_t bytes);
  std::string uri_for(const std::string& path) const;

  LspBackend& backend_;
  Send send_;
  Close close_;
  Log log_;
  std::string server_version_;
  State state_ = State::Uninitialized;
  bool closed_ = false;
  bool work_done_progress_ = false;  // the editor creates progress tokens (`window.workDoneProgress`)
  bool code_lens_refresh_ = false;   // the editor takes `workspace/codeLens/refresh`
  bool code_lens_refresh_sent_ = false;  // one at a time: until the editor answered it
  std::set<std::string> pending_;               // ids (dumped) of requests not yet answered
  std::map<std::int64_t, ResponseHandler> sent_requests_;  // requests hotd sent, by id, until answered
  std::int64_t next_request_id_ = 1;
  std::uint64_t next_progress_token_ = 1;
  // `hotd.attach` requests whose `hotd attach` runs, by id (dumped): its pid and progress token. A
  // cancelled one leaves this map; when its attach still succeeds, the process is detached again.
  struct AttachInProgress {
    int pid;
    nlohmann::json token;
  };
  std::map<std::string, AttachInProgress> attaches_;
  std::map<TicketId, nlohmann::json> waiting_;  // `hotd.patchFile`/`hotd.reloadModule` requests waiting
  std::map<std::string, LspDocument> documents_;  // open buffers by URI
  std::map<std::string, std::string> uri_by_path_;  // so diagnostics use the URI the editor opened
  std::set<std::string> ignored_methods_;           // unsupported notifications already logged
  std::map<std::string, PublishedSave> published_;  // by path as saved
  // Functions and classes saves updated or added: by normal path, then qualname, then pid -> when.
  using PatchTimes = std::map<int, std::chrono::steady_clock::time_point>;
  std::map<std::string, std::map<std::string, PatchTimes>> patched_;
  std::map<std::string, parser::PythonDocument> lens_models_;  // models of open buffers, by URI
  // CPython errors that arrived before their save completed, by path: (ticket, diagnostic).
  std::map<std::string, std::pair<TicketId, nlohmann::json>> early_python_errors_;
  bool told_document_limit_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // callbacks check it: the session may be gone
};

}  // namespace hotd::server
