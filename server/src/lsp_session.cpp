#include "lsp_session.hpp"
#include "hotd/protocol/json_depth.hpp"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

namespace hotd::server {

using nlohmann::json;
using namespace lsp_error;

namespace {

constexpr int kSeverityError = 1;
constexpr int kSeverityWarning = 2;
constexpr int kMessageError = 1;
constexpr int kMessageWarning = 2;
constexpr int kMessageInfo = 3;
constexpr int kSyncIncremental = 2;

// Thrown while reading params; becomes InvalidParams for a request, a log line for a notification.
struct InvalidParams : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const json& field(const json& object, const char* name) {
  if (!object.is_object() || !object.contains(name)) throw InvalidParams(std::string("missing field `") + name + "`");
  return object[name];
}

std::string string_field(const json& object, const char* name) {
  const json& value = field(object, name);
  if (!value.is_string()) throw InvalidParams(std::string("`") + name + "` must be a string");
  return value.get<std::string>();
}

std::uint32_t unsigned_field(const json& object, const char* name) {
  const json& value = field(object, name);
  if (!value.is_number_unsigned() || value.get<std::uint64_t>() > 0xFFFFFFFFu) {
    throw InvalidParams(std::string("`") + name + "` must be a non-negative integer");
  }
  return value.get<std::uint32_t>();
}

std::int64_t integer_field(const json& object, const char* name) {
  const json& value = field(object, name);
  if (!value.is_number_integer()) throw InvalidParams(std::string("`") + name + "` must be an integer");
  return value.get<std::int64_t>();
}

LspPosition position_from_json(const json& value) {
  return {unsigned_field(value, "line"), unsigned_field(value, "character")};
}

LspRange range_from_json(const json& value) {
  return {position_from_json(field(value, "start")), position_from_json(field(value, "end"))};
}

json position_to_json(LspPosition position) { return {{"line", position.line}, {"character", position.character}}; }

std::string path_of(const std::string& uri) {
  const auto path = uri_to_path(uri);
  if (!path) throw InvalidParams("not a local file URI: " + uri.substr(0, 200));
  return std::filesystem::path(*path).lexically_normal().string();
}

std::string normal_path(const std::string& path) { return std::filesystem::path(path).lexically_normal().string(); }

// "live in 3 processes · patched 2 min ago"
std::string lens_title(std::size_t processes, std::chrono::steady_clock::duration since) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since).count();
  const std::string ago = seconds < 60     ? std::to_string(seconds) + " s"
                          : seconds < 3600 ? std::to_string(seconds / 60) + " min"
                                           : std::to_string(seconds / 3600) + " h";
  return "live in " + std::to_string(processes) + (processes == 1 ? " process" : " processes") + " · patched " +
         ago + " ago";
}

// Whether the editor announced a capability (a `true` at `pointer` in the `initialize` params).
bool client_capability(const json& params, const char* pointer) {
  const json::json_pointer path(pointer);
  return params.contains(path) && params[path] == true;
}

// A command argument given bare (`[1234]`) or named (`[{"pid": 1234}]`).
const json& argument(const json& arguments, const char* name) {
  if (!arguments.is_array() || arguments.empty()) throw InvalidParams(std::string("expected arguments [") + name + "]");
  const json& first = arguments[0];
  return first.is_object() ? field(first, name) : first;
}

int pid_argument(const json& arguments) {
  const json& pid = argument(arguments, "pid");
  if (!pid.is_number_unsigned() || pid.get<std::uint64_t>() == 0 || pid.get<std::uint64_t>() > 0x7FFFFFFF) {
    throw InvalidParams("pid must be a positive integer");
  }
  return pid.get<int>();
}

// "updated value (line 3), rude P (line 5)": one process's results, for log lines.
std::string describe_results(const json& result) {
  std::string text;
  for (const json& entry : result.value("results", json::array())) {
    std::string subject = entry.value("qualname", json()).is_string() ? entry["qualname"].get<std::string>()
                                                                      : entry.value("kind", std::string("statement"));
    if (!text.empty()) text += ", ";
    text += entry.value("status", std::string("?")) + " " + subject;
    if (entry.value("line", json()).is_number()) text += " (line " + std::to_string(entry["line"].get<long>()) + ")";
  }
  return text;
}

// Whether the processes run none of a save: the parser refused the text, or no process applied any of it.
bool nothing_applied(const TicketResult& result) {
  const auto applied = [](const ProcessOutcome& process) {
    return process.status == "applied" || process.status == "partial";
  };
  return !result.errors.empty() || std::none_of(result.processes.begin(), result.processes.end(), applied);
}

std::string error_summary(const json& error) {
  if (error.is_string()) return error.get<std::string>();
  if (error.is_object()) return error.value("type", std::string("error")) + ": " + error.value("message", std::string());
  return "unknown error";
}

}  // namespace

json save_summary_json(const TicketResult& result) {
  json processes = json::array();
  for (const ProcessOutcome& process : result.processes) {
    processes.push_back({{"pid", process.pid}, {"status", process.status}, {"result", process.result}});
  }
  return {{"file", result.file}, {"ok", result.ok}, {"errors", result.errors}, {"processes", processes}};
}

LspSession::LspSession(LspBackend& backend, Send send, Close close, Log log, std::string server_version)
    : backend_(backend),
      send_(std::move(send)),
      close_(std::move(close)),
      log_(std::move(log)),
      server_version_(std::move(server_version)) {}

// --- Message rules --------------------------------------------------------------------------------

void LspSession::receive(const std::string& body) {
  if (closed_) return;
  if (!protocol::json_depth_within(body)) {  // parsing it could overflow the daemon's stack
    log_("editor sent a message nested deeper than " + std::to_string(protocol::kMaxJsonDepth) + " levels");
    send_error(nullptr, kInvalidRequest,
               "message nested deeper than " + std::to_string(protocol::kMaxJsonDepth) + " levels");
    return;
  }
  json message;
  try {
    message = json::parse(body);
  } catch (const json::exception& error) {  // a parse error, or a number out of range
    log_(std::string("editor sent invalid JSON: ") + error.what());
    send_error(nullptr, kParseError, std::string("invalid JSON or UTF-8: ") + error.what());
    return;
  }
  dispatch(message);
}

void LspSession::dispatch(const json& message) {
  if (!message.is_object()) {
    return send_error(nullptr, kInvalidRequest,
                      message.is_array() ? "batches are not supported by LSP" : "a message must be a JSON object");
  }
  const bool is_request = message.contains("id");
  const json id = is_request ? message["id"] : json();
  if (is_request && !id.is_string() && !id.is_number_integer()) {
    return send_error(nullptr, kInvalidRequest, "`id` must be an integer or a string");
  }
  if (message.value("jsonrpc", json()) != "2.0") return send_error(id, kInvalidRequest, "`jsonrpc` must be \"2.0\"");
  if (!message.contains("method")) {
    if (is_request && (message.contains("result") || message.contains("error"))) return on_response(id, message);
    return send_error(id, kInvalidRequest, "a message needs a `method` (or `result` for a response)");
  }
  if (!message["method"].is_string()) return send_error(id, kInvalidRequest, "`method` must be a string");
  const std::string method = message["method"].get<std::string>();
  // `null` as no params: LSP's `shutdown` and `exit` take none, and eglot sends null for them.
  const json params = message.contains("params") && !message["params"].is_null() ? message["params"] : json::object();
  if (!params.is_object() && !params.is_array()) {
    if (is_request) return send_error(id, kInvalidParams, "`params` must be an object or an array");
    return log_("editor notification " + method + " ignored: `params` must be an object or an array");
  }

  if (!is_request) {
    static const std::map<std::string, NotificationHandler> notifications = {
        {"initialized", &LspSession::on_initialized},
        {"exit", &LspSession::on_exit},
        {"$/cancelRequest", &LspSession::on_cancel},
        {"textDocument/didOpen", &LspSession::on_did_open},
        {"textDocument/didChange", &LspSession::on_did_change},
        {"textDocument/didSave", &LspSession::on_did_save},
        {"textDocument/didClose", &LspSession::on_did_close},
    };
    if (state_ == State::Uninitialized && method != "exit") return;  // dropped, as LSP asks
    const auto handler = notifications.find(method);
    if (handler == notifications.end()) {
      // Logged once per method: a flood of them must not flood the log.
      if (!method.starts_with("$/") && ignored_methods_.insert(method.substr(0, 200)).second) {
        log_("editor notification " + method.substr(0, 200) + " ignored: not supported");
      }
      return;
    }
    try {
      (this->*handler->second)(params);
    } catch (const std::exception& error) {  // InvalidParams or a JSON type error
      log_("editor notification " + method + " ignored: " + error.what());
    }
    return;
  }

  static const std::map<std::string, RequestHandler> requests = {
      {"initialize", &LspSession::on_initialize},
      {"shutdown", &LspSession::on_shutdown},
      {"workspace/executeCommand", &LspSession::on_execute_command},
      {"textDocument/codeAction", &LspSession::on_code_action},
      {"textDocument/codeLens", &LspSession::on_code_lens},
  };
  if (pending_.contains(id.dump())) return send_error(id, kInvalidRequest, "a request with this id is still pending");
  if (state_ == State::Uninitialized && method != "initialize") {
    return send_error(id, kServerNotInitialized, "the server is not initialized: send `initialize` first");
  }
  if (state_ != State::Uninitialized && method == "initialize") {
    return send_error(id, kInvalidRequest, "`initialize` may be sent only once");
  }
  if (state_ == State::ShuttingDown) return send_error(id, kInvalidRequest, "the server is shutting down");
  const auto handler = requests.find(method);
  if (handler == requests.end()) return send_error(id, kMethodNotFound, "method not found: " + method);
  pending_.insert(id.dump());
  try {
    if (auto outcome = (this->*handler->second)(id, params)) finish(id, *outcome);
  } catch (const std::exception& error) {  // InvalidParams or a JSON type error
    finish(id, Outcome::error(kInvalidParams, error.what()));
  }
}

// Every reply goes through here: a request is answered at most once, and never after a cancel.
void LspSession::finish(const json& id, const Outcome& outcome) {
  if (closed_ || pending_.erase(id.dump()) == 0) return;
  if (outcome.code != 0) {
    send_({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", outcome.code}, {"message", outcome.message}}}});
  } else {
    send_({{"jsonrpc", "2.0"}, {"id", id}, {"result", outcome.result}});
  }
}

void LspSession::request(const std::string& method, json params, ResponseHandler on_response) {
  if (closed_) return;
  const std::int64_t id = next_request_id_++;
  sent_requests_[id] = std::move(on_response);
  json message = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) message["params"] = std::move(params);
  send_(message);
}

void LspSession::on_response(const json& id, const json& response) {
  const auto sent = id.is_number_integer() ? sent_requests_.find(id.get<std::int64_t>()) : sent_requests_.end();
  if (sent == sent_requests_.end()) return log_("editor answered a request hotd did not send: " + id.dump());
  const ResponseHandler handler = std::move(sent->second);
  sent_requests_.erase(sent);
  handler(response);
}

void LspSession::send_error(const json& id, int code, const std::string& message) {
  if (closed_) return;
  send_({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

void LspSession::notify(const std::string& method, json params) {
  if (closed_) return;
  send_({{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}});
}

// --- Lifecycle ------------------------------------------------------------------------------------

std::optional<LspSession::Outcome> LspSession::on_initialize(const json&, const json& params) {
  if (!params.is_object()) throw InvalidParams("`params` of initialize must be an object");
  state_ = State::Running;
  work_done_progress_ = client_capability(params, "/capabilities/window/workDoneProgress");
  code_lens_refresh_ = client_capability(params, "/capabilities/workspace/codeLens/refreshSupport");
  const json capabilities = {
      {"positionEncoding", "utf-16"},
      {"textDocumentSync", {{"openClose", true}, {"change", kSyncIncremental}, {"save", {{"includeText", true}}}}},
      {"executeCommandProvider",
       {{"commands", {"hotd.listProcesses", "hotd.attach", "hotd.detach", "hotd.patchFile", "hotd.reloadModule", "hotd.revert"}}}},
      {"codeActionProvider", {{"codeActionKinds", {"quickfix"}}}},
      {"codeLensProvider", {{"resolveProvider", false}}},
      {"experimental", {{"hotd", {{"patchedNotification", "hotd/patched"}}}}},
  };
  return Outcome::ok({{"capabilities", capabilities}, {"serverInfo", {{"name", "hotd"}, {"version", server_version_}}}});
}

std::optional<LspSession::Outcome> LspSession::on_shutdown(const json&, const json&) {
  state_ = State::ShuttingDown;
  return Outcome::ok(nullptr);
}

void LspSession::on_initialized(const json&) {}

void LspSession::on_exit(const json&) {
  closed_ = true;
  close_();
}

void LspSession::on_cancel(const json& params) {
  const json& id = field(params, "id");
  if (!id.is_string() && !id.is_number_integer()) throw InvalidParams("`id` must be an integer or a string");
  // A running attach cannot be interrupted safely (it may be inside the target, under ptrace): it
  // finishes, and is undone if it succeeded. Its progress ends before the answer, as LSP orders it.
  if (const auto attach = attaches_.find(id.dump()); attach != attaches_.end()) {
    if (!attach->second.token.is_null()) {
      notify("$/progress", {{"token", attach->second.token},
                            {"value", {{"kind", "end"}, {"message", "cancelled: the process is detached if the attach completes"}}}});
    }
    attaches_.erase(attach);
  }
  finish(id, Outcome::error(kRequestCancelled, "cancelled"));  // no-op when already answered
}

// --- Documents ------------------------------------------------------------------------------------

void LspSession::on_did_open(const json& params) {
  const json& item = field(params, "textDocument");
  const std::string uri = string_field(item, "uri");
  std::string text = string_field(item, "text");
  if (!keep_document(uri, text.size())) return;
  documents_.insert_or_assign(uri, LspDocument(std::move(text), integer_field(item, "version")));
  if (const auto path = uri_to_path(uri)) uri_by_path_[std::filesystem::path(*path).lexically_normal().string()] = uri;
}

void LspSession::on_did_change(const json& params) {
  const json& identifier = field(params, "textDocument");
  const std::string uri = string_field(identifier, "uri");
  const auto document = documents_.find(uri);
  if (document == documents_.end()) throw InvalidParams("change of a document that is not open: " + uri.substr(0, 200));
  const json& changes = field(params, "contentChanges");
  if (!changes.is_array()) throw InvalidParams("`contentChanges` must be an array");
  // Check every change first so that a bad one leaves the buffer as it was.
  std::vector<std::pair<std::optional<LspRange>, std::string>> parsed;
  for (const json& change : changes) {
    std::optional<LspRange> range;
    if (change.is_object() && change.contains("range")) range = range_from_json(change["range"]);
    parsed.emplace_back(range, string_field(change, "text"));
  }
  LspDocument updated = document->second;
  for (auto& [range, text] : parsed) {
    if (!range) {
      updated.replace_all(std::move(text));
    } else if (!updated.apply_change(*range, text)) {
      throw InvalidParams("a change's range ends before it starts");
    }
  }
  updated.set_version(integer_field(identifier, "version"));
  if (!keep_document(uri, updated.text().size())) return;
  document->second = std::move(updated);
}

bool LspSession::keep_document(const std::string& uri, std::size_t bytes) {
  std::size_t others = 0;
  for (const auto& [open_uri, document] : documents_) {
    if (open_uri != uri) others += document.text().size();
  }
  const bool open = documents_.contains(uri);
  std::string why;
  if (!open && documents_.size() >= kMaxOpenDocuments) {
    why = "more than " + std::to_string(kMaxOpenDocuments) + " documents are open";
  } else if (others + bytes > kMaxOpenDocumentBytes) {
    why = "open documents would take more than " + std::to_string(kMaxOpenDocumentBytes >> 20) + " MiB";
  } else {
    return true;
  }
  documents_.erase(uri);
  lens_models_.erase(uri);
  if (!told_document_limit_) {
    told_document_limit_ = true;
    const std::string message = "hotd: " + uri.substr(0, 200) + " is not kept: " + why +
                                "; saving it still patches (hotd uses the saved text). Further buffers over the "
                                "limit are dropped without a message.";
    log_(message);
    notify("window/showMessage", {{"type", kMessageWarning}, {"message", message}});
  }
  return false;
}

void LspSession::on_did_save(const json& params) {
  const std::string uri = string_field(field(params, "textDocument"), "uri");
  const std::string path = path_of(uri);
  std::optional<std::string> text;
  if (params.contains("text")) {
    text = string_field(params, "text");
    if (const auto document = documents_.find(uri); document != documents_.end() && keep_document(uri, text->size())) {
      document->second.replace_all(*text);
    }
  } else {
    text = backend_.read_file(path);
    if (!text) throw InvalidParams("cannot read " + path);
  }
  backend_.save(path, *text);
}

void LspSession::on_did_close(const json& params) {
  const std::string uri = string_field(field(params, "textDocument"), "uri");
  documents_.erase(uri);
  lens_models_.erase(uri);
  std::erase_if(uri_by_path_, [&](const auto& entry) { return entry.second == uri; });
}

// --- Commands -------------------------------------------------------------------------------------

// hotd.listProcesses [URI]: every attached process, or those that loaded the file (a code lens's).
LspSession::Outcome LspSession::command_list_processes(const json& arguments) const {
  const json processes = backend_.status()["processes"];
  if (arguments.empty()) return Outcome::ok({{"processes", processes}});
  const auto path = arguments[0].is_string() ? uri_to_path(arguments[0].get<std::string>()) : std::nullopt;
  if (!path) return Outcome::error(kInvalidParams, "hotd.listProcesses takes a file:// URI, or no argument");
  const std::string wanted = normal_path(*path);
  json running_it = json::array();
  for (const json& process : processes) {
    const json files = process.value("files", json::array());
    if (std::any_of(files.begin(), files.end(),
                    [&](const json& file) { return normal_path(file.value("file", "")) == wanted; })) {
      running_it.push_back(process);
    }
  }
  return Outcome::ok({{"processes", running_it}});
}

std::optional<LspSession::Outcome> LspSession::on_execute_command(const json& id, const json& params) {
  const std::string command = string_field(params, "command");
  const json arguments = params.is_object() ? params.value("arguments", json::array()) : json::array();
  if (command == "hotd.listProcesses") return command_list_processes(arguments);
  if (command == "hotd.attach") return command_attach(id, arguments, params.value("workDoneToken", json()));
  if (command == "hotd.detach") return command_detach(arguments);
  if (command == "hotd.patchFile") return command_patch_file(id, arguments);
  if (command == "hotd.reloadModule") return command_reload_module(id, arguments);
  if (command == "hotd.revert") return command_revert(id, arguments);
  return Outcome::error(kInvalidParams, "unknown command: " + command);
}

std::optional<LspSession::Outcome> LspSession::command_patch_file(const json& id, const json& arguments) {
  const json& uri = argument(arguments, "uri");
  if (!uri.is_string()) throw InvalidParams("uri must be a string");
  const std::string path = path_of(uri.get<std::string>());
  // The editor's buffer when it is open (patching without saving), else the file on disk.
  std::optional<std::string> text;
  if (const auto document = documents_.find(uri.get<std::string>()); document != documents_.end()) {
    text = document->second.text();
  } else {
    text = backend_.read_file(path);
  }
  if (!text) return Outcome::error(kRequestFailed, "cannot read " + path);
  waiting_[backend_.save(path, *text)] = id;
  return std::nullopt;
}

std::optional<LspSession::Outcome> LspSession::command_reload_module(const json& id, const json& arguments) {
  const json& uri = argument(arguments, "uri");
  if (!uri.is_string()) throw InvalidParams("uri must be a string");
  const std::string path = path_of(uri.get<std::string>());
  const auto ticket = backend_.reload(path);
  if (!ticket) return Outcome::error(kRequestFailed, "cannot read " + path);
  waiting_[*ticket] = id;
  return std::nullopt;
}

// `hotd revert` from the editor: the processes go back to the previous applied version of the file;
// the buffer and the file on disk are not changed.
std::optional<LspSession::Outcome> LspSession::command_revert(const json& id, const json& arguments) {
  const json& uri = argument(arguments, "uri");
  if (!uri.is_string()) throw InvalidParams("uri must be a string");
  const std::string path = path_of(uri.get<std::string>());
  std::string why;
  const auto text = backend_.previous_version(path, why);
  if (!text) return Outcome::error(kRequestFailed, why);
  waiting_[backend_.save(path, *text)] = id;
  return std::nullopt;
}

// A quick fix on each rude-edit diagnostic of hotd: reload the whole module (`hotd.reloadModule`).
std::optional<LspSession::Outcome> LspSession::on_code_action(const json&, const json& params) {
  const std::string uri = string_field(field(params, "textDocument"), "uri");
  const json& diagnostics = field(field(params, "context"), "diagnostics");
  if (!diagnostics.is_array()) throw InvalidParams("`diagnostics` must be an array");
  json actions = json::array();
  for (const json& diagnostic : diagnostics) {
    if (!diagnostic.is_object() || diagnostic.value("source", json()) != "hotd" ||
        diagnostic.value("code", json()) != "rude-edit") {
      continue;
    }
    const json command = {{"title", "Reload the whole module in every process (hotd reload)"},
                          {"command", "hotd.reloadModule"},
                          {"arguments", json::array({{{"uri", uri}}})}};
    actions.push_back({{"title", command["title"]}, {"kind", "quickfix"}, {"diagnostics", json::array({diagnostic})},
                       {"command", command}});
  }
  return Outcome::ok(actions);
}

// With a progress token (`workDoneToken` in the params, or one the editor created when it supports
// `window.workDoneProgress`), the attach is reported as `$/progress` begin and end.
std::optional<LspSession::Outcome> LspSession::command_attach(const json& id, const json& arguments,
                                                             const json& work_done_token) {
  const int pid = pid_argument(arguments);
  const bool has_token = work_done_token.is_string() || work_done_token.is_number_integer();
  if (has_token || !work_done_progress_) {
    run_attach(id, pid, has_token ? work_done_token : json());
    return std::nullopt;
  }
  // A created token may be used once the editor answered: the attach starts then, without progress
  // when the editor refused, and not at all when the request was cancelled meanwhile.
  const json token = "hotd-attach-" + std::to_string(next_progress_token_++);
  request("window/workDoneProgress/create", {{"token", token}}, [this, id, pid, token](const json& response) {
    if (pending_.contains(id.dump())) run_attach(id, pid, response.contains("error") ? json() : token);
  });
  return std::nullopt;
}

void LspSession::run_attach(const json& id, int pid, const json& token) {
  if (!token.is_null()) {
    notify("$/progress", {{"token", token},
                          {"value", {{"kind", "begin"}, {"title", "Attaching to pid " + std::to_string(pid)},
                                     {"message", "hotd attach " + std::to_string(pid)}}}});
  }
  attaches_[id.dump()] = {pid, token};
  std::weak_ptr<bool> alive = alive_;
  backend_.attach(pid, [this, alive, id, pid, token](bool succeeded, const std::string& output) {
    if (!alive.lock()) return;  // the editor went away meanwhile
    if (attaches_.erase(id.dump()) == 0) {  // cancelled: answered already
      if (succeeded && backend_.detach(pid)) {
        log_("hotd.attach of pid " + std::to_string(pid) + " was cancelled while it ran: detached it again");
      }
      return;
    }
    if (!token.is_null()) {
      const std::string last_line = output.substr(output.find_last_of('\n') + 1);
      notify("$/progress", {{"token", token},
                            {"value", {{"kind", "end"}, {"message", succeeded ? "attached" : "failed: " + last_line}}}});
    }
    if (succeeded) {
      finish(id, Outcome::ok({{"pid", pid}, {"attached", true}, {"output", output}}));
    } else {
      finish(id, Outcome::error(kRequestFailed, "hotd attach " + std::to_string(pid) + " failed: " + output));
    }
  });
}

std::optional<LspSession::Outcome> LspSession::command_detach(const json& arguments) {
  const int pid = pid_argument(arguments);
  if (!backend_.detach(pid)) return Outcome::error(kRequestFailed, "no attached process with pid " + std::to_string(pid));
  return Outcome::ok({{"pid", pid}, {"detached", true}});
}

// A lens on each function or class of an open buffer that a save updated or added in a process that
// is still attached: in how many it runs, and how long ago it was patched last. The definitions are
// found by qualname in the buffer as it is now (hotd's parser), so lenses follow edits.
std::optional<LspSession::Outcome> LspSession::on_code_lens(const json&, const json& params) {
  const std::string uri = string_field(field(params, "textDocument"), "uri");
  const auto path = uri_to_path(uri);
  const auto document = documents_.find(uri);
  const auto patched = path ? patched_.find(normal_path(*path)) : patched_.end();
  if (document == documents_.end() || patched == patched_.end()) return Outcome::ok(json::array());

  auto model = lens_models_.find(uri);
  if (model == lens_models_.end()) {
    model = lens_models_.emplace(uri, parser::PythonDocument(document->second.text())).first;
  } else if (model->second.source() != document->second.text()) {
    model->second.update(document->second.text());
  }
  const std::set<int> attached = backend_.attached_pids();
  const auto now = std::chrono::steady_clock::now();
  json lenses = json::array();
  std::set<std::string> shown;  // one lens per qualname: on the first definition (a property's getter)
  for (const parser::Definition& definition : model->second.module().definitions) {
    if (definition.kind != parser::DefinitionKind::Function && definition.kind != parser::DefinitionKind::Class) continue;
    const auto times = patched->second.find(definition.qualname);
      if (times == patched->second.end() || !shown.insert(definition.qualname).second) continue;
    std::size_t live = 0;
    auto last = std::chrono::steady_clock::time_point::min();
    for (const auto& [pid, when] : times->second) {
      if (!attached.contains(pid)) continue;
      ++live;
      last = std::max(last, when);
    }
    if (live == 0) continue;
    const json position = position_to_json({definition.span.start.line, 0});
    lenses.push_back({{"range", {{"start", position}, {"end", position}}},
                      {"command", {{"title", lens_title(live, now - last)},
                                   {"command", "hotd.listProcesses"},
                                   {"arguments", json::array({uri})}}}});
  }
  return Outcome::ok(lenses);
}

void LspSession::processes_changed(const json& processes) {
  if (state_ != State::Running || closed_) return;
  notify("hotd/processesChanged", {{"processes", processes}});
}

void LspSession::record_patched(const TicketResult& result) {
  const auto now = std::chrono::steady_clock::now();
  bool recorded = false;
  for (const ProcessOutcome& process : result.processes) {
    if (process.status != "applied" && process.status != "partial") continue;
    for (const json& entry : process.result.value("results", json::array())) {
      const std::string status = entry.value("status", "");
      if ((status != "updated" && status != "added") || !entry.value("qualname", json()).is_string()) continue;
      if (entry.contains("file") && entry["file"] != result.file) continue;  // a reload's dependents
      patched_[normal_path(result.file)][entry["qualname"].get<std::string>()][process.pid] = now;
      recorded = true;
    }
  }
  if (recorded && code_lens_refresh_ && !code_lens_refresh_sent_) {
    code_lens_refresh_sent_ = true;
    request("workspace/codeLens/refresh", nullptr, [this](const json&) { code_lens_refresh_sent_ = false; });
  }
}

// --- Results of saves -----------------------------------------------------------------------------

std::string LspSession::uri_for(const std::string& path) const {
  const std::string normal = std::filesystem::path(path).lexically_normal().string();
  const auto found = uri_by_path_.find(normal);
  return found == uri_by_path_.end() ? path_to_uri(normal) : found->second;
}

void LspSession::save_completed(const TicketResult& result, const std::string& text) {
  const json summary = save_summary_json(result);
  if (const auto waiting = waiting_.find(result.ticket); waiting != waiting_.end()) {
    finish(waiting->second, Outcome::ok(summary));
    waiting_.erase(waiting);
  }
  if (state_ != State::Running || closed_) return;
  // With the file watcher on, a save reaches the daemon twice (the watcher's and the editor's own
  // didSave): the second finds every process running that text already. What the editor shows is the
  // outcome of the first, and still true: keep it rather than replace it with "unchanged".
  const bool repeat = result.errors.empty() && !result.processes.empty() &&
                      std::all_of(result.processes.begin(), result.processes.end(),
                                  [](const ProcessOutcome& process) { return process.status == "unchanged"; });
  auto& last_text = last_completed_text_[result.file];
  if (repeat && last_text == text) return;
  if (result.errors.empty()) last_text = text;
  record_patched(result);
  const std::string uri = uri_for(result.file);
  PublishedSave& published = published_[result.file];
  published = {result.ticket, save_diagnostics(result, text), nothing_applied(result), nullptr};
  if (const auto early = early_python_errors_.find(result.file);
      early != early_python_errors_.end() && early->second.first <= result.ticket) {
    if (early->second.first == result.ticket) published.python_error = std::move(early->second.second);
    early_python_errors_.erase(early);
  }
  publish_diagnostics(uri, published);

  const std::string name = std::filesystem::path(result.file).filename().string();
  std::vector<std::string> attention;
  if (!result.errors.empty()) {
    notify("window/logMessage", {{"type", kMessageWarning},
                                 {"message", "hotd: " + name + " has syntax errors; nothing was applied"}});
  } else if (result.processes.empty()) {
    notify("window/logMessage", {{"type", kMessageInfo}, {"message", "hotd: " + name + " saved; no attached process runs it"}});
  }
  int message_type = kMessageWarning;
  for (const ProcessOutcome& process : result.processes) {
    std::string line = "hotd: " + name + " in pid " + std::to_string(process.pid) + ": " + process.status;
    const std::string details = describe_results(process.result);
    if (!details.empty()) line += ": " + details;
    if (process.result.contains("error") && !process.result["error"].is_null()) line += ": " + error_summary(process.result["error"]);
    notify("window/logMessage", {{"type", process.status == "failed" ? kMessageError : kMessageInfo}, {"message", line}});
    if (process.status == "failed") message_type = kMessageError;
    if (process.status == "failed" || process.status == "partial" || process.status == "timeout") {
      attention.push_back("pid " + std::to_string(process.pid) + " " + process.status);
    }
  }
  if (!attention.empty()) {
    std::string text_of_message = "hotd: the save of " + name + " was not fully applied (";
    for (std::size_t i = 0; i < attention.size(); ++i) text_of_message += (i ? ", " : "") + attention[i];
    notify("window/showMessage", {{"type", message_type}, {"message", text_of_message + "); see the problems of the file"}});
  }
  json patched = summary;
  patched["uri"] = uri;
  notify("hotd/patched", std::move(patched));
}

json LspSession::save_diagnostics(const TicketResult& result, const std::string& text) const {
  json diagnostics = json::array();
  auto whole_line = [&](long line) {
    const std::uint32_t index = line > 0 ? static_cast<std::uint32_t>(line - 1) : 0;
    return json{{"start", position_to_json({index, 0})}, {"end", position_to_json(end_of_line(text, index))}};
  };
  std::set<std::pair<long, std::string>> seen;  // one diagnostic per line and message, over processes and modules
  auto add = [&](long line, json range, int severity, const std::string& code, const std::string& message) {
    if (!seen.insert({line, message}).second) return;
    diagnostics.push_back(
        {{"range", std::move(range)}, {"severity", severity}, {"source", "hotd"}, {"code", code}, {"message", message}});
  };
  for (const json& error : result.errors) {
    const auto line = error.value("line", 1u);
    const LspPosition start = position_of_code_point_column(text, line, error.value("column", 1u));
    const LspPosition end = position_of_code_point_column(text, error.value("end_line", line), error.value("end_column", 1u));
    add(line, {{"start", position_to_json(start)}, {"end", position_to_json(end)}}, kSeverityError, "syntax-error",
        error.value("message", std::string("syntax error")) + " (nothing was applied)");
  }
  for (const ProcessOutcome& process : result.processes) {
    const std::string who = "pid " + std::to_string(process.pid) + ": ";
    for (const json& entry : process.result.value("results", json::array())) {
      // A reload reports its dependents too: their lines are in their own files.
      if (entry.contains("file") && entry["file"] != result.file) continue;
      const std::string status = entry.value("status", "");
      long line = entry.value("line", json()).is_number_integer() ? entry["line"].get<long>() : 0;
      if (line == 0 && entry.value("error", json()).is_object()) line = entry["error"].value("line", 1L);
      if (status == "rude") {
        add(line, whole_line(line), kSeverityWarning, "rude-edit", entry.value("message", std::string()) + " (not applied)");
      } else if (status == "failed") {
        const std::string summary = entry.value("error", json()).is_null() ? entry.value("message", std::string("failed"))
                                                                         : error_summary(entry["error"]);
        add(line, whole_line(line), kSeverityError, "patch-failed", who + summary + " (not applied)");
      }
    }
    if (process.status == "failed" && process.result.contains("error") && !process.result["error"].is_null()) {
      add(1, whole_line(1), kSeverityError, "patch-failed", who + error_summary(process.result["error"]));
    }
  }
  return diagnostics;
}

void LspSession::python_syntax_checked(TicketId ticket, const std::string& path, const std::string& text,
                                       const PythonSyntaxError& error) {
  if (state_ != State::Running || closed_) return;
  const LspPosition start = position_of_code_point_column(text, error.line, error.column);
  LspPosition end;
  if (error.end_line == 0 || error.end_column == 0) {  // Python gave no end: up to the end of the line
    end = end_of_line(text, start.line);
  } else if (std::pair(error.end_line, error.end_column) <= std::pair(error.line, error.column)) {
    end = position_of_code_point_column(text, error.line, error.column + 1);  // one character, as Python's caret
  } else {
    end = position_of_code_point_column(text, error.end_line, error.end_column);
  }
  json diagnostic = {{"range", {{"start", position_to_json(start)}, {"end", position_to_json(end)}}},
                     {"severity", kSeverityError},
                     {"source", "hotd"},
                     {"code", "python-syntax-error"},
                     {"message", error.type + ": " + error.message}};
  const auto published = published_.find(path);
  if (published != published_.end() && published->second.ticket == ticket) {
    published->second.python_error = std::move(diagnostic);
    publish_diagnostics(uri_for(path), published->second);
  } else if (published == published_.end() || published->second.ticket < ticket) {
    early_python_errors_[path] = {ticket, std::move(diagnostic)};
  }
}

void LspSession::publish_diagnostics(const std::string& uri, const PublishedSave& save) {
  json diagnostics = json::array();
  std::optional<std::uint32_t> python_line;
  if (!save.python_error.is_null()) {
    json python = save.python_error;
    python["message"] = python["message"].get<std::string>() +
                        (save.nothing_applied ? " (nothing was applied)"
                                              : " (hotd's parser accepted the file: the save was sent to the processes)");
    python_line = python["range"]["start"]["line"].get<std::uint32_t>();
    diagnostics.push_back(std::move(python));
  }
  for (const json& diagnostic : save.diagnostics) {
    // Python's error replaces the parser's from its line on: Python stops at its first error, and the
    // parser's later ones are mostly echoes of it.
    if (python_line && diagnostic["code"] == "syntax-error" && diagnostic["range"]["start"]["line"] >= *python_line) {
      continue;
    }
    diagnostics.push_back(diagnostic);
  }
  notify("textDocument/publishDiagnostics", {{"uri", uri}, {"diagnostics", std::move(diagnostics)}});
}

}  // namespace hotd::server
