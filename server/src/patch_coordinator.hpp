// The daemon's core, with no I/O of its own: which processes run which version of which file, and
// what to send to whom when a file is saved.
//
// Every attached process has, per module file, a baseline: the source it is running. A save is
// diffed against each distinct baseline (processes started at different times may run different
// versions) and dispatched as a plan. Per (process, file) at most one plan is in flight; saves that
// arrive meanwhile coalesce to the newest, so saves apply in order and a stale one never lands after
// a newer one. A save ticket collects every process's answer for whoever waits on it (`hotd patch`).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hotd/parser/definition.hpp"
#include "hotd/parser/patch_plan.hpp"
#include "hotd/parser/python_document.hpp"

namespace hotd::server {

using AgentId = std::uint64_t;
using TicketId = std::uint64_t;

struct AgentInfo {
  int pid = 0;
  std::string python_version;
  std::string executable;
  std::string cwd;
  std::string launcher;  // "run" or "attach"
  std::vector<std::string> argv;
  std::vector<std::string> watch;  // directories `hotd run` asked to watch
  // Over TCP: its uid is unknown and it may claim any file, so the daemon never reads a file for it
  // (no baseline, comparison or catch-up from the disk) and never takes its texts for the history.
  bool remote = false;
};

struct LoadedModule {
  std::string name;
  std::string file;  // as the process spells it
  // The text the process runs, as it reported it; without it (not UTF-8, too large) the file on disk
  // is taken for it.
  std::optional<std::string> source;
  // Where the live code is not what `source` compiles to (the agent compared them): the next save
  // updates those definitions even if it does not change them.
  parser::RunningDrift drift;
};

// A plan to send to one agent as `agent/patch`, a whole-module reload as `agent/reload`, or, to a
// process that has not reported the saved file, `agent/sync`: the barrier that brings the report of
// every import that finished before the save (the process may have imported the file since its last
// report) before the save is planned for it.
struct Dispatch {
  AgentId agent = 0;
  std::string key;      // canonical path
  std::uint64_t save = 0;
  nlohmann::json params;  // {file, modules, save, plan, source}; {file, modules, save} for a reload; {file} for a sync
  std::string method = "agent/patch";
};

// What one process did with one save, for the ticket.
struct ProcessOutcome {
  int pid = 0;
  std::string status;  // applied, partial, failed, unchanged, superseded, timeout, exited
  nlohmann::json result;  // the agent's result, or {"error": ...}
};

struct TicketResult {
  TicketId ticket = 0;
  std::string file;
  bool ok = true;  // false when any process reported rude or failed parts, or the text has errors
  nlohmann::json errors = nlohmann::json::array();  // syntax errors of the saved text
  std::vector<ProcessOutcome> processes;
};

// One version of a file the daemon was given, and what the processes did with it: `hotd log`, and
// the versions `hotd revert` goes back to.
struct HistoryEntry {
  std::uint64_t version = 0;  // increasing for the daemon's lifetime
  std::string file;
  std::string origin;         // "loaded": what processes started with; "save": a save they were sent
  std::int64_t time_ms = 0;   // wall clock, milliseconds since the epoch
  std::shared_ptr<const std::string> text;
  bool syntax_error = false;
  bool completed = false;     // every process answered (or none runs the file)
  std::vector<std::pair<int, std::string>> processes;  // pid and status, as in TicketResult; a late
                                                       // answer replaces the "timeout" it had
  TicketId ticket = 0;                                 // the save's; 0 for what processes loaded
};

class PatchCoordinator {
 public:
  static constexpr std::size_t kHistoryPerFile = 50;
  using FileReader = std::function<std::optional<std::string>(const std::string& path)>;
  using Canonicalizer = std::function<std::string(const std::string& path)>;

  PatchCoordinator(FileReader read_file, Canonicalizer canonical);

  AgentId add_agent(AgentInfo info);
  // The process went away: its pending answers complete as "exited".
  std::vector<TicketResult> remove_agent(AgentId agent);

  struct LoadOutcome {
    // Files (as the process spells them) whose text on disk differs from what the process runs:
    // saved while no daemon was there to patch them, or while the process was importing them.
    std::vector<std::string> changed_on_disk;
    std::vector<Dispatch> dispatches;  // saves that waited for this report (a sync found the import running)
    std::vector<TicketResult> completed;
  };
  // Records modules; a new file's baseline is the text the process reported, else (not for a remote
  // agent) the file on disk. A module reported again with a new text (the process re-imported it)
  // takes that text.
  LoadOutcome modules_loaded(AgentId agent, const std::vector<LoadedModule>& modules);

  struct SaveOutcome {
    std::vector<Dispatch> dispatches;
    // Tickets completed by this save: its own when nothing had to be sent, and older saves it
    // superseded.
    std::vector<TicketResult> completed;
    TicketId ticket = 0;
  };
  // A new version of `path`. Returns what to send now; the ticket completes through on_result.
  // `only_for`: the text on disk for the one process that missed it (a catch-up), which nobody else
  // asked for.
  SaveOutcome save(const std::string& path, std::string text, std::optional<AgentId> only_for = std::nullopt);
  // `hotd reload`: every process that loaded `path` re-executes it from disk (`text`, as read now) and
  // the modules that import names from it. Ordered with saves like a save. When a process reloaded,
  // its baselines of `path` and of the dependents it re-executed (its result's `files`) become their
  // text on disk.
  SaveOutcome reload(const std::string& path, std::string text);
  // The file (as the process spells it) of a module name some process loaded.
  std::optional<std::string> file_of_module(const std::string& name) const;

  struct ResultOutcome {
    std::vector<Dispatch> dispatches;  // the next coalesced save for the same (process, file)
    std::vector<TicketResult> completed;
  };
  ResultOutcome on_result(AgentId agent, const std::string& key, std::uint64_t save, const nlohmann::json& result,
                          bool failed_to_deliver = false);
  // The process did not answer in time: its ticket entry completes as "timeout" (a late answer
  // still updates the baseline).
  std::vector<TicketResult> on_timeout(AgentId agent, const std::string& key, std::uint64_t save);
  // The answer to an `agent/sync` for `save` (after the daemon recorded the modules it carried): the
  // save goes to the process if it runs the file now, waits for its report while it is `importing`
  // the file, and otherwise the ticket stops waiting for it.
  ResultOutcome on_synced(AgentId agent, const std::string& key, std::uint64_t save, bool importing);
  // No answer to a sync in time, or the import it waits for did not end in time. A process that does
  // not answer whether it runs the file is left out of the ticket (a late answer still dispatches);
  // one still importing the file gets "timeout", and the save applies when its report comes.
  std::vector<TicketResult> on_sync_timeout(AgentId agent, std::uint64_t save);

  // Oldest first; every file's when `path` is empty.
  std::vector<HistoryEntry> history(const std::string& path) const;
  // The text of the version before the one the processes run now: what `hotd revert` sends. Nullopt,
  // with `why` set, when there is none.
  std::optional<std::string> previous_version(const std::string& path, std::string& why) const;

  bool knows_file(const std::string& path) const;
  std::optional<std::string> canonical_known(const std::string& path) const;
  const AgentInfo* agent(AgentId id) const;
  std::vector<AgentId> agents() const;
  std::vector<std::string> files_of(AgentId id) const;  // canonical paths of the module files it loaded
  nlohmann::json describe_agent(AgentId id) const;
  std::vector<AgentId> agents_with_file(const std::string& key) const;

 private:
  struct Baseline {
    std::string source;
    parser::Module module;
  };

  struct ProcessFile {
    std::string path;                 // as the agent spells it
    std::vector<std::string> modules;
    std::shared_ptr<const Baseline> baseline;
    parser::RunningDrift drift;  // definitions that do not run `baseline`, until a save applies
    // Rude edits the process did not apply: it still runs these definitions (qualnames) as in
    // `rude_base`, so every later save reports them again until the process runs their new text.
    std::shared_ptr<const Baseline> rude_base;
    std::set<std::string> rude_definitions;
    std::set<std::string> in_flight_rude;    // the rude edits of the plan in flight
    bool in_flight_timed_out = false;        // its ticket got "timeout": saves queued behind it get it too
    std::uint64_t newest_save = 0;           // the newest save sent or queued to the process
    std::optional<std::uint64_t> in_flight;  // save number of the plan being applied
    std::optional<std::uint64_t> pending;    // newest save waiting behind it
  };

  struct Agent {
    AgentInfo info;
    std::map<std::string, ProcessFile> files;  // by canonical path
    std::map<std::string, std::uint64_t> awaiting_import;  // file key -> newest save waiting for its report
  };

  struct Save {
    std::string key;
    std::string text;
    TicketId ticket = 0;
    bool reload = false;  // `hotd reload`: re-execute from disk instead of a plan
    std::set<AgentId> syncing;  // processes asked whether they run the file, not answered yet
  };

  struct FileState {
    std::unique_ptr<parser::PythonDocument> latest;  // the newest saved text, reparsed incrementally
    std::uint64_t latest_save = 0;
    std::map<std::string, std::weak_ptr<const Baseline>> baselines;  // interned by source
  };

  struct Ticket {
    TicketResult result;
    std::set<AgentId> waiting;
  };

  std::shared_ptr<const Baseline> intern_baseline(FileState& state, const std::string& source);
  std::optional<Dispatch> make_dispatch(AgentId agent_id, Agent& agent, ProcessFile& file, const std::string& key,
                                        std::uint64_t save_number, std::vector<TicketResult>& completed);
  // Sends save `save_number` to each target now, or queues it behind the plan in flight (coalescing);
  // a save older than one the process already has is superseded.
  void send_or_queue(const std::string& key, std::uint64_t save_number, const std::vector<AgentId>& targets,
                     std::vector<Dispatch>& dispatches, std::vector<TicketResult>& completed);
  void answer(TicketId ticket, AgentId agent, ProcessOutcome outcome, std::vector<TicketResult>& completed);
  // After a reload: the dependents the agent re-executed run their disk text now.
  void adopt_reloaded_dependents(Agent& agent, const std::string& key, const nlohmann::json& result);
  // The plan for one process: its baseline against the save, its drift, and its pending rude edits
  // diffed from what it still runs for them.
  parser::Plan plan_for(const ProcessFile& file, const parser::Module& after) const;
  // After a plan applied: the rude edits of `result` stay pending against what ran before.
  void keep_rude_pending(ProcessFile& file, const std::shared_ptr<const Baseline>& before, const nlohmann::json& result);
  // A save queued behind a plan that timed out: its ticket gets "timeout" too; it still applies later.
  void answer_queued_behind_timeout(AgentId agent, int pid, std::uint64_t save, std::vector<TicketResult>& completed);
  void record_late_answer(TicketId ticket, int pid, const std::string& status);
  // Ends the ticket's wait for `agent` without an answer of its own (it does not run the file).
  void release(TicketId ticket, AgentId agent, std::vector<TicketResult>& completed);
  // A save is kept while some process has it in flight, pending, being synced or awaiting an import.
  void forget_finished_saves();

  FileReader read_file_;
  Canonicalizer canonical_;
  AgentId next_agent_ = 1;
  std::uint64_t next_save_ = 1;
  TicketId next_ticket_ = 1;
  std::map<AgentId, Agent> agents_;
  std::map<std::string, FileState> files_;
  std::map<std::uint64_t, Save> saves_;  // saves still referenced by an in-flight or pending dispatch
  std::map<TicketId, Ticket> tickets_;

  void record_history(const std::string& key, const std::string& file, const std::string& origin,
                      const std::string& text, TicketId ticket);
  // Writes the outcome of completed tickets into their history entries; returns them unchanged.
  std::vector<TicketResult> recorded(std::vector<TicketResult> completed);
  std::map<std::string, std::deque<HistoryEntry>> history_;  // by canonical path
  std::map<TicketId, std::pair<std::string, std::uint64_t>> history_by_ticket_;
  std::uint64_t next_version_ = 1;
};

}  // namespace hotd::server
