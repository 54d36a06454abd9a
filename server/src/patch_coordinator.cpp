#include "patch_coordinator.hpp"

#include <algorithm>
#include <chrono>

#include "hotd/parser/patch_plan.hpp"
#include "hotd/protocol/plan_json.hpp"

namespace hotd::server {

using nlohmann::json;

namespace {

// Nothing was applied when every reported change failed (a compile error fails them all).
bool nothing_applied(const json& result) {
  if (result.contains("error") && !result["error"].is_null()) return true;
  const json& results = result.value("results", json::array());
  if (results.empty()) return false;
  return std::all_of(results.begin(), results.end(),
                     [](const json& entry) { return entry.value("status", "") == "failed"; });
}

// Why an agent's answer to a patch or reload does not have the shape of docs/PATCHING.md's result,
// or nullopt. Checked before anything reads it: a malformed answer must fail its save at once, not
// throw halfway through the bookkeeping of the file's queue.
std::optional<std::string> malformed(const json& result) {
  if (!result.is_object()) return "it is not an object";
  if (result.contains("ok") && !result["ok"].is_boolean()) return "`ok` is not true or false";
  if (result.contains("error") && !(result["error"].is_null() || result["error"].is_string() || result["error"].is_object())) {
    return "`error` is neither null, a text nor an object";
  }
  if (result.contains("files")) {
    if (!result["files"].is_array()) return "`files` is not a list";
    for (const json& file : result["files"]) {
      if (!file.is_string()) return "`files` holds something that is not a path";
    }
  }
  if (!result.contains("results")) return std::nullopt;
  if (!result["results"].is_array()) return "`results` is not a list";
  for (const json& entry : result["results"]) {
    if (!entry.is_object() || !entry.contains("status") || !entry["status"].is_string()) return "a result has no status";
    if (entry.contains("qualname") && !(entry["qualname"].is_null() || entry["qualname"].is_string())) {
      return "a result's `qualname` is not a text";
    }
    if (entry.contains("line") && !(entry["line"].is_null() || entry["line"].is_number_integer())) {
      return "a result's `line` is not a number";
    }
    for (const char* text : {"message", "label", "kind", "op", "module"}) {
      if (entry.contains(text) && !(entry[text].is_null() || entry[text].is_string())) {
        return std::string("a result's `") + text + "` is not a text";
      }
    }
    if (entry.contains("stale") && !entry["stale"].is_array()) return "a result's `stale` is not a list";
    if (entry.contains("error") && !(entry["error"].is_null() || entry["error"].is_object())) {
      return "a result's `error` is not an object";
    }
  }
  return std::nullopt;
}

// A reload re-executed `path` when the agent lists it in `files` (a module that raised is put back).
bool reloaded(const json& result, const std::string& path) {
  const json files = result.value("files", json::array());
  return std::find(files.begin(), files.end(), json(path)) != files.end();
}

// What a change is about, for rude edits kept pending: a definition by qualname, a statement by
// the class it belongs to (the rude statements are class fields, members and __slots__).
const std::string& definition_key(const parser::Change& change) {
  return change.qualname.empty() ? change.owner : change.qualname;
}

}  // namespace

PatchCoordinator::PatchCoordinator(FileReader read_file, Canonicalizer canonical)
    : read_file_(std::move(read_file)), canonical_(std::move(canonical)) {}

AgentId PatchCoordinator::add_agent(AgentInfo info) {
  const AgentId id = next_agent_++;
  agents_[id].info = std::move(info);
  return id;
}

std::vector<TicketResult> PatchCoordinator::remove_agent(AgentId id) {
  std::vector<TicketResult> completed;
  const auto found = agents_.find(id);
  if (found == agents_.end()) return completed;
  const int pid = found->second.info.pid;
  for (auto& [number, save] : saves_) {
    if (save.syncing.erase(id) > 0) release(save.ticket, id, completed);
  }
  for (const auto& [key, number] : found->second.awaiting_import) {
    answer(saves_.at(number).ticket, id,
           {pid, "exited", json{{"error", "the process exited or disconnected while it was importing the file"}}},
           completed);
  }
  for (auto& [key, file] : found->second.files) {
    for (const auto& save : {file.in_flight, file.pending}) {
      if (!save) continue;
      const auto entry = saves_.find(*save);
      if (entry == saves_.end()) continue;
      answer(entry->second.ticket, id,
             {pid, "exited", json{{"error", "the process exited or disconnected before it answered"}}}, completed);
    }
  }
  std::vector<std::string> keys;
  for (const auto& [key, file] : found->second.files) keys.push_back(key);
  agents_.erase(found);
  forget_finished_saves();
  completed = recorded(std::move(completed));
  // What it alone ran goes with it: a process that reports large files and leaves, again and again,
  // must not grow the daemon. Kept while a save of the file is still under way for another process.
  for (const std::string& key : keys) {
    const bool in_use = !agents_with_file(key).empty() ||
                        std::any_of(saves_.begin(), saves_.end(), [&](const auto& save) { return save.second.key == key; });
    if (in_use) continue;
    files_.erase(key);
    history_.erase(key);
  }
  return completed;
}

std::shared_ptr<const PatchCoordinator::Baseline> PatchCoordinator::intern_baseline(FileState& state,
                                                                                    const std::string& source) {
  auto& slot = state.baselines[source];
  if (auto existing = slot.lock()) return existing;
  // A process that applied the newest save runs exactly the text the document has parsed: copying
  // that model costs far less than parsing the file again (38 ms at 5,000 lines).
  const bool parsed = state.latest && state.latest->source() == source;
  auto baseline = std::make_shared<const Baseline>(
      Baseline{source, parsed ? state.latest->module() : parser::parse_module(source)});
  slot = baseline;
  // Forget baselines no process runs any more.
  std::erase_if(state.baselines, [](const auto& entry) { return entry.second.expired(); });
  return baseline;
}

PatchCoordinator::LoadOutcome PatchCoordinator::modules_loaded(AgentId id, const std::vector<LoadedModule>& modules) {
  LoadOutcome outcome;
  const auto found = agents_.find(id);
  if (found == agents_.end()) return outcome;
  Agent& agent = found->second;
  for (const LoadedModule& module : modules) {
    const std::string key = canonical_(module.file);
    ProcessFile& file = agent.files[key];
    file.path = module.file;
    if (std::find(file.modules.begin(), file.modules.end(), module.name) == file.modules.end()) {
      file.modules.push_back(module.name);
    }
    const bool reimported = file.baseline && module.source && *module.source != file.baseline->source &&
                            !file.in_flight;
    if (file.baseline && !reimported) continue;
    const auto on_disk = agent.info.remote ? std::nullopt : read_file_(module.file);
    const auto& running = module.source ? module.source : on_disk;
    if (!running) continue;
    file.baseline = intern_baseline(files_[key], *running);
    file.drift = module.drift;
    file.rude_base.reset();
    file.rude_definitions.clear();
    // `hotd revert` sends history to every process: a remote agent's claim must not become a save.
    if (history_[key].empty() && !agent.info.remote) record_history(key, module.file, "loaded", *running, 0);
    if (const auto awaited = agent.awaiting_import.find(key); awaited != agent.awaiting_import.end()) {
      const std::uint64_t save = awaited->second;  // the newest save: it brings the file up to date
      agent.awaiting_import.erase(awaited);
      send_or_queue(key, save, {id}, outcome.dispatches, outcome.completed);
    } else if (!agent.info.remote && ((on_disk && *on_disk != *running) || !file.drift.empty())) {
      outcome.changed_on_disk.push_back(module.file);
    }
  }
  forget_finished_saves();
  outcome.completed = recorded(std::move(outcome.completed));
  return outcome;
}

void PatchCoordinator::answer(TicketId ticket_id, AgentId agent, ProcessOutcome outcome,
                              std::vector<TicketResult>& completed) {
  const auto found = tickets_.find(ticket_id);
  if (found == tickets_.end() || !found->second.waiting.contains(agent)) return;
  Ticket& ticket = found->second;
  if (outcome.status != "applied" && outcome.status != "unchanged") ticket.result.ok = false;
  ticket.result.processes.push_back(std::move(outcome));
  ticket.waiting.erase(agent);
  if (ticket.waiting.empty()) {
    completed.push_back(std::move(ticket.result));
    tickets_.erase(found);
  }
}

void PatchCoordinator::release(TicketId ticket_id, AgentId agent, std::vector<TicketResult>& completed) {
  const auto found = tickets_.find(ticket_id);
  if (found == tickets_.end() || found->second.waiting.erase(agent) == 0 || !found->second.waiting.empty()) return;
  completed.push_back(std::move(found->second.result));
  tickets_.erase(found);
}

parser::Plan PatchCoordinator::plan_for(const ProcessFile& file, const parser::Module& after) const {
  parser::Plan plan = parser::diff_modules(file.baseline->module, after, file.drift);
  if (file.rude_definitions.empty() || !plan.ok) return plan;
  // For the definitions whose rude edit is pending, what the process runs is in rude_base.
  const auto pending = [&](const parser::Change& change) { return file.rude_definitions.contains(definition_key(change)); };
  std::erase_if(plan.changes, pending);
  for (parser::Change& change : parser::diff_modules(file.rude_base->module, after).changes) {
    if (pending(change)) plan.changes.push_back(std::move(change));
  }
  return plan;
}

void PatchCoordinator::keep_rude_pending(ProcessFile& file, const std::shared_ptr<const Baseline>& before,
                                         const json& result) {
  std::set<std::string> rude = std::move(file.in_flight_rude);
  for (const json& entry : result.value("results", json::array())) {
    if (entry.value("status", "") == "rude" && entry.contains("qualname") && entry["qualname"].is_string()) {
      rude.insert(entry["qualname"].get<std::string>());
    }
  }
  if (rude.empty()) {
    file.rude_base.reset();
  } else if (!file.rude_base) {
    file.rude_base = before;
  }
  file.rude_definitions = std::move(rude);
}

std::optional<Dispatch> PatchCoordinator::make_dispatch(AgentId agent_id, Agent& agent, ProcessFile& file,
                                                        const std::string& key, std::uint64_t save_number,
                                                        std::vector<TicketResult>& completed) {
  const Save& save = saves_.at(save_number);
  const int pid = agent.info.pid;
  if (save.reload) {  // the agent reads the file itself: neither the baseline nor a plan is needed
    file.in_flight = save_number;
    file.newest_save = save_number;
    return Dispatch{agent_id, key, save_number,
                    {{"file", file.path}, {"modules", file.modules}, {"save", save_number}}, "agent/reload"};
  }
  if (!file.baseline) {
    answer(save.ticket, agent_id,
           {pid, "failed", json{{"error", "hotd could not read " + file.path + " when the process loaded it"}}},
           completed);
    return std::nullopt;
  }
  if (file.baseline->source == save.text && file.drift.empty() && file.rude_definitions.empty()) {
    answer(save.ticket, agent_id, {pid, "unchanged", json::object()}, completed);
    return std::nullopt;
  }
  FileState& state = files_[key];
  const parser::Module* after = &state.latest->module();
  parser::Module reparsed;
  if (save_number != state.latest_save) {  // defensive: the document has moved past this save
    reparsed = parser::parse_module(save.text);
    after = &reparsed;
  }
  const parser::Plan plan = plan_for(file, *after);
  file.in_flight_rude.clear();
  for (const parser::Change& change : plan.changes) {
    if (change.op == parser::ChangeOp::Rude) file.in_flight_rude.insert(definition_key(change));
  }
  Dispatch dispatch;
  dispatch.agent = agent_id;
  dispatch.key = key;
  dispatch.save = save_number;
  dispatch.params = {{"file", file.path},
                     {"modules", file.modules},
                     {"save", save_number},
                     {"plan", protocol::plan_to_json(plan, *after)},
                     // The agent keeps it as what it runs, for the next daemon should this one go away.
                     {"source", save.text}};
  file.in_flight = save_number;
  file.newest_save = save_number;
  return dispatch;
}

PatchCoordinator::SaveOutcome PatchCoordinator::save(const std::string& path, std::string text,
                                                     std::optional<AgentId> only_for) {
  SaveOutcome outcome;
  const std::string key = canonical_(path);
  FileState& state = files_[key];
  if (state.latest) {
    state.latest->update(text);
  } else {
    state.latest = std::make_unique<parser::PythonDocument>(text);
  }
  const std::uint64_t save_number = next_save_++;
  state.latest_save = save_number;
  const TicketId ticket_id = next_ticket_++;
  outcome.ticket = ticket_id;

  Ticket& ticket = tickets_[ticket_id];
  ticket.result.ticket = ticket_id;
  ticket.result.file = path;
  record_history(key, path, "save", text, ticket_id);
  const parser::Module& module = state.latest->module();
  if (module.has_errors()) {
    ticket.result.ok = false;
    for (const auto& error : module.errors) ticket.result.errors.push_back(protocol::syntax_error_to_json(module, error));
    outcome.completed.push_back(std::move(ticket.result));
    tickets_.erase(ticket_id);
    outcome.completed = recorded(std::move(outcome.completed));
    return outcome;
  }

  std::vector<AgentId> targets = agents_with_file(key);
  std::set<AgentId> unsure;  // every other process: it may have imported the file since its last report
  for (const auto& [id, agent] : agents_) {
    if (!agent.files.contains(key) && !only_for) unsure.insert(id);
  }
  if (only_for) std::erase_if(targets, [&](AgentId id) { return id != *only_for; });
  if (targets.empty() && unsure.empty()) {
    outcome.completed.push_back(std::move(ticket.result));
    tickets_.erase(ticket_id);
    outcome.completed = recorded(std::move(outcome.completed));
    return outcome;
  }
  ticket.waiting.insert(targets.begin(), targets.end());
  ticket.waiting.insert(unsure.begin(), unsure.end());
  saves_[save_number] = Save{key, std::move(text), ticket_id, false, unsure};
  send_or_queue(key, save_number, targets, outcome.dispatches, outcome.completed);
  for (const AgentId id : unsure) {
    outcome.dispatches.push_back(Dispatch{id, key, save_number, {{"file", path}}, "agent/sync"});
  }
  outcome.completed = recorded(std::move(outcome.completed));
  return outcome;
}

PatchCoordinator::SaveOutcome PatchCoordinator::reload(const std::string& path, std::string text) {
  SaveOutcome outcome;
  const std::string key = canonical_(path);
  const std::uint64_t save_number = next_save_++;
  outcome.ticket = next_ticket_++;
  Ticket& ticket = tickets_[outcome.ticket];
  ticket.result.ticket = outcome.ticket;
  ticket.result.file = path;
  const std::vector<AgentId> targets = agents_with_file(key);
  if (targets.empty()) {
    outcome.completed.push_back(std::move(ticket.result));
    tickets_.erase(outcome.ticket);
    return outcome;
  }
  ticket.waiting.insert(targets.begin(), targets.end());
  saves_[save_number] = Save{key, std::move(text), outcome.ticket, true};
  send_or_queue(key, save_number, targets, outcome.dispatches, outcome.completed);
  return outcome;
}

void PatchCoordinator::send_or_queue(const std::string& key, std::uint64_t save_number,
                                     const std::vector<AgentId>& targets, std::vector<Dispatch>& dispatches,
                                     std::vector<TicketResult>& completed) {
  for (const AgentId id : targets) {
    Agent& agent = agents_.at(id);
    ProcessFile& file = agent.files.at(key);
    if (file.newest_save > save_number) {  // a sync answered after a newer save went out directly
      answer(saves_.at(save_number).ticket, id,
             {agent.info.pid, "superseded", json{{"error", "a newer save of the same file replaced it"}}}, completed);
      continue;
    }
    if (file.in_flight) {
      if (file.pending) {  // coalesce: only the newest waits behind the plan in flight
        answer(saves_.at(*file.pending).ticket, id,
               {agent.info.pid, "superseded", json{{"error", "a newer save of the same file replaced it"}}},
               completed);
      }
      file.pending = save_number;
      file.newest_save = save_number;
      if (file.in_flight_timed_out) answer_queued_behind_timeout(id, agent.info.pid, save_number, completed);
      continue;
    }
    if (auto dispatch = make_dispatch(id, agent, file, key, save_number, completed)) {
      dispatches.push_back(std::move(*dispatch));
    }
  }
}

PatchCoordinator::ResultOutcome PatchCoordinator::on_synced(AgentId id, const std::string& key, std::uint64_t save,
                                                            bool importing) {
  ResultOutcome outcome;
  const auto agent_entry = agents_.find(id);
  const auto save_entry = saves_.find(save);
  // A sync names the save and the file it was sent for; an answer naming another file is not one.
  if (agent_entry == agents_.end() || save_entry == saves_.end() || save_entry->second.key != key) return outcome;
  save_entry->second.syncing.erase(id);
  Agent& agent = agent_entry->second;
  if (agent.files.contains(key)) {
    send_or_queue(key, save, {id}, outcome.dispatches, outcome.completed);
  } else if (importing) {
    auto& awaited = agent.awaiting_import[key];
    if (awaited != 0 && awaited != save) {
      answer(saves_.at(awaited).ticket, id,
             {agent.info.pid, "superseded", json{{"error", "a newer save of the same file replaced it"}}},
             outcome.completed);
    }
    awaited = save;
  } else {
    release(save_entry->second.ticket, id, outcome.completed);
  }
  forget_finished_saves();
  outcome.completed = recorded(std::move(outcome.completed));
  return outcome;
}

std::vector<TicketResult> PatchCoordinator::on_sync_timeout(AgentId id, std::uint64_t save) {
  std::vector<TicketResult> completed;
  const auto agent_entry = agents_.find(id);
  const auto save_entry = saves_.find(save);
  if (agent_entry == agents_.end() || save_entry == saves_.end()) return completed;
  const Save& waiting = save_entry->second;
  const auto awaited = agent_entry->second.awaiting_import.find(waiting.key);
  if (awaited != agent_entry->second.awaiting_import.end() && awaited->second == save) {
    answer(waiting.ticket, id,
           {agent_entry->second.info.pid, "timeout",
            json{{"error", "the process is still importing the file (its top level is running): the save "
                           "applies when that import ends"}}},
           completed);
  } else if (waiting.syncing.contains(id)) {
    release(waiting.ticket, id, completed);  // it still gets the save if its late answer says it runs the file
  }
  return recorded(std::move(completed));
}

void PatchCoordinator::forget_finished_saves() {
  std::erase_if(saves_, [this](const auto& entry) {
    if (!entry.second.syncing.empty()) return false;
    for (const auto& [agent_id, each] : agents_) {
      for (const auto& [file_key, awaited] : each.awaiting_import) {
        if (awaited == entry.first) return false;
      }
      for (const auto& [file_key, each_file] : each.files) {
        if (each_file.in_flight == entry.first || each_file.pending == entry.first) return false;
      }
    }
    return true;
  });
}

PatchCoordinator::ResultOutcome PatchCoordinator::on_result(AgentId id, const std::string& key, std::uint64_t save,
                                                            const json& answered, bool failed_to_deliver) {
  ResultOutcome outcome;
  const auto why = malformed(answered);
  const json result = why ? json{{"error", "the process answered with a malformed result (" + *why +
                                               "): nothing of the save is taken as applied"}}
                          : answered;
  const auto agent_entry = agents_.find(id);
  const auto save_entry = saves_.find(save);
  if (agent_entry == agents_.end() || save_entry == saves_.end()) return outcome;
  Agent& agent = agent_entry->second;
  const auto file_entry = agent.files.find(key);
  if (file_entry == agent.files.end()) return outcome;
  ProcessFile& file = file_entry->second;
  // Only the answer to what this process has in flight counts (a late one after a timeout included):
  // one for another save would take its text as the baseline and drop the save in flight.
  if (file.in_flight != save) return outcome;
  file.in_flight.reset();
  file.in_flight_timed_out = false;

  const bool reload = save_entry->second.reload;
  const bool applied = !failed_to_deliver && (reload ? reloaded(result, file.path) : !nothing_applied(result));
  if (applied) {
    const auto before = file.baseline;
    file.baseline = intern_baseline(files_[key], save_entry->second.text);
    file.drift = {};
    if (reload) {
      file.rude_base.reset();
      file.rude_definitions.clear();
      adopt_reloaded_dependents(agent, key, result);
    } else {
      keep_rude_pending(file, before, result);
    }
  }
  std::string status = "failed";
  if (applied) status = result.value("ok", false) ? "applied" : "partial";
  const TicketId ticket = save_entry->second.ticket;
  if (const auto waiting = tickets_.find(ticket); waiting == tickets_.end() || !waiting->second.waiting.contains(id)) {
    record_late_answer(ticket, agent.info.pid, status);  // after a timeout: `hotd log` says what happened
  }
  answer(ticket, id, {agent.info.pid, status, result}, outcome.completed);

  if (file.pending) {
    const std::uint64_t next = *file.pending;
    file.pending.reset();
    if (auto dispatch = make_dispatch(id, agent, file, key, next, outcome.completed)) {
      outcome.dispatches.push_back(std::move(*dispatch));
    }
  }
  forget_finished_saves();
  outcome.completed = recorded(std::move(outcome.completed));
  return outcome;
}

std::vector<TicketResult> PatchCoordinator::on_timeout(AgentId id, const std::string& key, std::uint64_t save) {
  std::vector<TicketResult> completed;
  const auto agent_entry = agents_.find(id);
  const auto save_entry = saves_.find(save);
  if (agent_entry == agents_.end() || save_entry == saves_.end()) return completed;
  const auto file_entry = agent_entry->second.files.find(key);
  if (file_entry == agent_entry->second.files.end() || file_entry->second.in_flight != save) return completed;
  ProcessFile& file = file_entry->second;
  file.in_flight_timed_out = true;
  answer(save_entry->second.ticket, id,
         {agent_entry->second.info.pid, "timeout",
          json{{"error", "the process did not answer in time: it may be holding the GIL in a long call; "
                         "the patch applies when it lets go"}}},
         completed);
  if (file.pending) answer_queued_behind_timeout(id, agent_entry->second.info.pid, *file.pending, completed);
  return recorded(std::move(completed));
}

void PatchCoordinator::answer_queued_behind_timeout(AgentId agent, int pid, std::uint64_t save,
                                                    std::vector<TicketResult>& completed) {
  answer(saves_.at(save).ticket, agent,
         {pid, "timeout",
          json{{"error", "queued behind a patch the process has not answered (it may be holding the GIL in a long "
                         "call): it applies when the process answers that one"}}},
         completed);
}

void PatchCoordinator::record_late_answer(TicketId ticket, int pid, const std::string& status) {
  for (auto& [key, entries] : history_) {
    for (HistoryEntry& entry : entries) {
      if (entry.ticket != ticket) continue;
      for (auto& [process, recorded_status] : entry.processes) {
        if (process == pid) recorded_status = status;
      }
      return;
    }
  }
}

void PatchCoordinator::adopt_reloaded_dependents(Agent& agent, const std::string& key, const json& result) {
  for (const json& path : result.value("files", json::array())) {
    if (!path.is_string()) continue;
    const std::string dependent = canonical_(path.get<std::string>());
    const auto file = agent.files.find(dependent);
    if (dependent == key || file == agent.files.end() || agent.info.remote) continue;
    if (const auto source = read_file_(file->second.path)) {
      file->second.baseline = intern_baseline(files_[dependent], *source);
    }
  }
}

std::optional<std::string> PatchCoordinator::file_of_module(const std::string& name) const {
  for (const auto& [id, agent] : agents_) {
    for (const auto& [key, file] : agent.files) {
      if (std::find(file.modules.begin(), file.modules.end(), name) != file.modules.end()) return file.path;
    }
  }
  return std::nullopt;
}

bool PatchCoordinator::knows_file(const std::string& path) const { return canonical_known(path).has_value(); }

std::optional<std::string> PatchCoordinator::canonical_known(const std::string& path) const {
  const std::string key = canonical_(path);
  for (const auto& [id, agent] : agents_) {
    if (agent.files.contains(key)) return key;
  }
  return std::nullopt;
}

const AgentInfo* PatchCoordinator::agent(AgentId id) const {
  const auto found = agents_.find(id);
  return found == agents_.end() ? nullptr : &found->second.info;
}

std::vector<AgentId> PatchCoordinator::agents() const {
  std::vector<AgentId> ids;
  for (const auto& [id, agent] : agents_) ids.push_back(id);
  return ids;
}

std::vector<std::string> PatchCoordinator::files_of(AgentId id) const {
  std::vector<std::string> keys;
  const auto found = agents_.find(id);
  if (found == agents_.end()) return keys;
  for (const auto& [key, file] : found->second.files) keys.push_back(key);
  return keys;
}

std::vector<AgentId> PatchCoordinator::agents_with_file(const std::string& key) const {
  std::vector<AgentId> ids;
  for (const auto& [id, agent] : agents_) {
    if (agent.files.contains(key)) ids.push_back(id);
  }
  return ids;
}

json PatchCoordinator::describe_agent(AgentId id) const {
  const auto found = agents_.find(id);
  if (found == agents_.end()) return nullptr;
  const Agent& agent = found->second;
  json files = json::array();
  for (const auto& [key, file] : agent.files) {
    json entry = {{"file", file.path}, {"modules", file.modules}, {"patching", file.in_flight.has_value()}};
    // Definitions that do not run the text hotd has, until a save applies them.
    if (!file.drift.empty()) entry["drift"] = {{"differs", file.drift.differs}, {"missing", file.drift.missing}};
    if (!file.rude_definitions.empty()) entry["rude_pending"] = file.rude_definitions;
    files.push_back(std::move(entry));
  }
  return {{"pid", agent.info.pid},         {"python_version", agent.info.python_version},
          {"executable", agent.info.executable}, {"argv", agent.info.argv},
          {"cwd", agent.info.cwd},         {"launcher", agent.info.launcher},
          {"files", files}};
}

void PatchCoordinator::record_history(const std::string& key, const std::string& file, const std::string& origin,
                                      const std::string& text, TicketId ticket) {
  HistoryEntry entry;
  entry.version = next_version_++;
  entry.file = file;
  entry.origin = origin;
  entry.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  entry.text = std::make_shared<const std::string>(text);
  entry.completed = ticket == 0;
  entry.ticket = ticket;
  auto& entries = history_[key];
  entries.push_back(std::move(entry));
  if (entries.size() > kHistoryPerFile) entries.pop_front();
  if (ticket != 0) history_by_ticket_[ticket] = {key, entries.back().version};
}

std::vector<TicketResult> PatchCoordinator::recorded(std::vector<TicketResult> completed) {
  for (const TicketResult& result : completed) {
    const auto link = history_by_ticket_.find(result.ticket);
    if (link == history_by_ticket_.end()) continue;
    for (HistoryEntry& entry : history_[link->second.first]) {
      if (entry.version != link->second.second) continue;
      entry.completed = true;
      entry.syntax_error = !result.errors.empty();
      for (const ProcessOutcome& process : result.processes) entry.processes.emplace_back(process.pid, process.status);
    }
    history_by_ticket_.erase(link);
  }
  return completed;
}

std::vector<HistoryEntry> PatchCoordinator::history(const std::string& path) const {
  std::vector<HistoryEntry> entries;
  for (const auto& [key, file_entries] : history_) {
    if (!path.empty() && key != canonical_(path)) continue;
    entries.insert(entries.end(), file_entries.begin(), file_entries.end());
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  return entries;
}

std::optional<std::string> PatchCoordinator::previous_version(const std::string& path, std::string& why) const {
  const auto found = history_.find(canonical_(path));
  if (found == history_.end() || found->second.empty()) {
    why = "hotd has no history of " + path + ": no attached process has loaded it";
    return std::nullopt;
  }
  // A version counts when some process runs (or ran) it: what it loaded, or a save it applied.
  const auto ran = [](const HistoryEntry& entry) {
    if (entry.origin == "loaded") return true;
    return std::any_of(entry.processes.begin(), entry.processes.end(), [](const auto& process) {
      return process.second == "applied" || process.second == "partial" || process.second == "unchanged";
    });
  };
  const auto& entries = found->second;
  auto current = std::find_if(entries.rbegin(), entries.rend(), ran);
  if (current == entries.rend()) {
    why = "no version of " + path + " was applied yet";
    return std::nullopt;
  }
  for (auto earlier = std::next(current); earlier != entries.rend(); ++earlier) {
    if (ran(*earlier) && *earlier->text != *current->text) return *earlier->text;
  }
  why = "the processes run the only version of " + path + " hotd knows (it keeps the last " +
        std::to_string(kHistoryPerFile) + " per file)";
  return std::nullopt;
}

}  // namespace hotd::server
