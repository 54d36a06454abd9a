// Fuzzes the daemon's handling of what agents tell it, through PatchCoordinator (the rules the daemon
// applies to every agent message, with no I/O): processes registering and leaving, module reports
// with any text (or none), answers to patches and syncs that are any JSON at all (from the input,
// often malformed), answers for saves never sent or sent to another process, late answers after a
// timeout, all interleaved with saves and reloads of a few files.
//
// Checked: no crash or hang; every ticket a save or reload opened completes exactly once, at the
// latest when every process has left; a completed ticket names only processes that were attached.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "patch_coordinator.hpp"

namespace {

using namespace hotd::server;
using nlohmann::json;

const bool tracing = std::getenv("HOTD_FUZZ_TRACE") != nullptr;  // replaying a crash: each step

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "agent_protocol_fuzzer: " << what << "\n";
  std::abort();
}

const char* const kFiles[] = {"/p/app.py", "/p/dep.py", "/p/other.py"};
const char* const kTexts[] = {
    "def value():\n    return 1\n",
    "def value():\n    return 2\n\nclass K:\n    def m(self):\n        return 3\n",
    "from app import value\nLIMIT = 1\n",
    "def value(:\n",
    "",
};
const char* const kStatuses[] = {"updated", "added", "deleted", "failed", "rude", "skipped", "executed", "reloaded"};

// An answer as an agent may send one: well formed, one of the shapes agents send, or any JSON the
// input spells (parse failures become a scalar).
json answer(FuzzedDataProvider& input) {
  switch (input.ConsumeIntegralInRange(0, 3)) {
    case 0: {
      json results = json::array();
      for (int n = input.ConsumeIntegralInRange(0, 3); n > 0; --n) {
        results.push_back({{"status", input.PickValueInArray(kStatuses)}, {"qualname", "value"}});
      }
      return {{"ok", input.ConsumeBool()}, {"results", results}};
    }
    case 1: return {{"ok", true}, {"files", {input.PickValueInArray(kFiles)}}, {"results", {{{"status", "reloaded"}}}}};
    case 2: return {{"error", {{"code", -32603}, {"message", "raised"}}}};
    default: {
      json parsed = json::parse(input.ConsumeRandomLengthString(256), nullptr, /*allow_exceptions=*/false);
      return parsed.is_discarded() ? json(input.ConsumeIntegral<int>()) : parsed;
    }
  }
}

struct Session {
  std::map<std::string, std::string> disk;
  PatchCoordinator coordinator{[this](const std::string& path) -> std::optional<std::string> {
                                 const auto found = disk.find(path);
                                 if (found == disk.end()) return std::nullopt;
                                 return found->second;
                               },
                               [](const std::string& path) { return path; }};
  std::vector<AgentId> agents;                 // attached now
  std::set<int> pids_ever;                     // of every process that was attached
  std::vector<Dispatch> sent;                  // what went out, for answers (and wrong answers)
  std::set<TicketId> open, done;

  void take(const std::vector<Dispatch>& dispatches) { sent.insert(sent.end(), dispatches.begin(), dispatches.end()); }
  void take(const std::vector<TicketResult>& completed) {
    for (const TicketResult& ticket : completed) {
      if (ticket.ticket == 0) continue;  // a catch-up nobody waits for
      if (tracing) std::cerr << "  -> ticket " << ticket.ticket << " completed\n";
      if (!done.insert(ticket.ticket).second) fail("ticket " + std::to_string(ticket.ticket) + " completed twice");
      open.erase(ticket.ticket);
      for (const ProcessOutcome& process : ticket.processes) {
        if (!pids_ever.count(process.pid)) fail("a ticket names pid " + std::to_string(process.pid) + ", never attached");
      }
    }
  }
  void opened(const PatchCoordinator::SaveOutcome& outcome) {
    if (outcome.ticket != 0 && !done.count(outcome.ticket)) open.insert(outcome.ticket);
    take(outcome.completed);  // after: a save with nothing to send completes its own ticket at once
    take(outcome.dispatches);
  }
  // Any agent, attached or gone (answers from a connection that already left are possible in order).
  AgentId some_agent(FuzzedDataProvider& input) const {
    if (agents.empty() || input.ConsumeBool()) return input.ConsumeIntegralInRange<AgentId>(0, 8);
    return agents[input.ConsumeIntegralInRange<std::size_t>(0, agents.size() - 1)];
  }
  std::vector<LoadedModule> modules(FuzzedDataProvider& input) const {
    std::vector<LoadedModule> modules;
    for (int n = input.ConsumeIntegralInRange(0, 3); n > 0; --n) {
      LoadedModule module{input.ConsumeBool() ? "app" : "dep", input.PickValueInArray(kFiles), std::nullopt, {}};
      if (input.ConsumeBool()) {
        module.source = input.ConsumeBool() ? std::string(input.PickValueInArray(kTexts)) : input.ConsumeRandomLengthString(128);
      }
      if (input.ConsumeBool()) module.drift.differs.insert("value");
      modules.push_back(std::move(module));
    }
    return modules;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  Session session;
  for (const char* file : kFiles) session.disk[file] = kTexts[0];
  PatchCoordinator& coordinator = session.coordinator;
  auto trace = [&](const std::string& what) {
    if (tracing) std::cerr << "  " << what << "\n";
  };
  for (int step = 0; step < 64 && input.remaining_bytes() > 0; ++step) {
    switch (input.ConsumeIntegralInRange(0, 9)) {
      case 0: {  // agent/register
        const int pid = input.ConsumeIntegralInRange(2, 40);
        AgentInfo info;
        info.pid = pid;
        info.remote = input.ConsumeBool();
        const AgentId agent = coordinator.add_agent(info);
        session.agents.push_back(agent);
        session.pids_ever.insert(pid);
        const auto modules = session.modules(input);
        trace("register agent " + std::to_string(agent) + " pid " + std::to_string(pid) + ", " + std::to_string(modules.size()) + " module(s)");
        const auto loaded = coordinator.modules_loaded(agent, modules);
        session.take(loaded.dispatches);
        session.take(loaded.completed);
        break;
      }
      case 1: {  // agent/imported, also from an agent that is gone
        const AgentId agent = session.some_agent(input);
        const auto modules = session.modules(input);
        trace("imported: agent " + std::to_string(agent) + ", " + std::to_string(modules.size()) + " module(s)");
        const auto loaded = coordinator.modules_loaded(agent, modules);
        session.take(loaded.dispatches);
        session.take(loaded.completed);
        break;
      }
      case 2: {  // an editor's save, or a watcher's (the disk changes too)
        const std::string file = input.PickValueInArray(kFiles);
        const std::string text = input.ConsumeBool() ? input.PickValueInArray(kTexts) : input.ConsumeRandomLengthString(128);
        if (input.ConsumeBool()) session.disk[file] = text;
        const auto outcome = coordinator.save(file, text);
        trace("save " + file + ": ticket " + std::to_string(outcome.ticket) + ", " + std::to_string(outcome.dispatches.size()) + " sent");
        session.opened(outcome);
        break;
      }
      case 3: {  // hotd reload
        const std::string file = input.PickValueInArray(kFiles);
        const auto outcome = coordinator.reload(file, session.disk[file]);
        trace("reload " + file + ": ticket " + std::to_string(outcome.ticket) + ", " + std::to_string(outcome.dispatches.size()) + " sent");
        session.opened(outcome);
        break;
      }
      case 4:
      case 5: {  // an answer: to something sent, or to something never sent
        Dispatch to;
        if (!session.sent.empty() && input.ConsumeBool()) {
          to = session.sent[input.ConsumeIntegralInRange<std::size_t>(0, session.sent.size() - 1)];
          if (input.ConsumeBool()) to.agent = session.some_agent(input);
        } else {
          to.agent = session.some_agent(input);
          to.key = input.PickValueInArray(kFiles);
          to.save = input.ConsumeIntegralInRange<std::uint64_t>(0, 20);
          to.method = input.ConsumeBool() ? "agent/sync" : "agent/patch";
        }
        trace("answer " + to.method + " agent " + std::to_string(to.agent) + " " + to.key + " save " + std::to_string(to.save));
        if (to.method == "agent/sync") {
          const auto outcome = coordinator.on_synced(to.agent, to.key, to.save, input.ConsumeBool());
          session.take(outcome.dispatches);
          session.take(outcome.completed);
        } else {
          const auto outcome = coordinator.on_result(to.agent, to.key, to.save, answer(input), input.ConsumeBool());
          session.take(outcome.dispatches);
          session.take(outcome.completed);
        }
        break;
      }
      case 6: {  // no answer in time
        if (session.sent.empty()) break;
        const Dispatch& to = session.sent[input.ConsumeIntegralInRange<std::size_t>(0, session.sent.size() - 1)];
        trace("timeout " + to.method + " agent " + std::to_string(to.agent) + " save " + std::to_string(to.save));
        session.take(to.method == "agent/sync" ? coordinator.on_sync_timeout(to.agent, to.save)
                                               : coordinator.on_timeout(to.agent, to.key, to.save));
        break;
      }
      case 7: {  // the process leaves
        if (session.agents.empty()) break;
        const std::size_t which = input.ConsumeIntegralInRange<std::size_t>(0, session.agents.size() - 1);
        trace("agent " + std::to_string(session.agents[which]) + " leaves");
        session.take(coordinator.remove_agent(session.agents[which]));
        session.agents.erase(session.agents.begin() + static_cast<std::ptrdiff_t>(which));
        break;
      }
      case 8: {  // what the commands ask meanwhile
        for (const AgentId agent : session.agents) (void)coordinator.describe_agent(agent);
        std::string why;
        (void)coordinator.previous_version(input.PickValueInArray(kFiles), why);
        (void)coordinator.history("");
        break;
      }
      default: {  // a sync answer's own timeout while the import runs
        const AgentId agent = session.some_agent(input);
        const auto save = input.ConsumeIntegralInRange<std::uint64_t>(0, 20);
        trace("sync timeout agent " + std::to_string(agent) + " save " + std::to_string(save));
        session.take(coordinator.on_sync_timeout(agent, save));
      }
    }
  }
  // Everyone leaves: no ticket may be left waiting.
  for (const AgentId agent : session.agents) session.take(coordinator.remove_agent(agent));
  if (!session.open.empty()) fail("ticket " + std::to_string(*session.open.begin()) + " never completed");
  return 0;
}
