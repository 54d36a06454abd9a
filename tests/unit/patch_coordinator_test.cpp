// The daemon's rules without sockets: per-process baselines, ordered and coalesced saves, tickets.
#include <map>
#include <string>

#include <doctest/doctest.h>

#include "patch_coordinator.hpp"

using namespace hotd::server;
using nlohmann::json;

namespace {

// Files "on disk" for the coordinator's baseline reads.
struct Disk {
  std::map<std::string, std::string> files;
  PatchCoordinator coordinator{[this](const std::string& path) -> std::optional<std::string> {
                                 const auto found = files.find(path);
                                 if (found == files.end()) return std::nullopt;
                                 return found->second;
                               },
                               [](const std::string& path) { return path; }};

  AgentId attach(int pid, const std::string& path) {
    const AgentId id = coordinator.add_agent(AgentInfo{pid});
    coordinator.modules_loaded(id, {{"app", path}});
    return id;
  }
};

std::string version(int n) { return "def value():\n    return " + std::to_string(n) + "\n"; }

// A process that has reported /other.py only, and a save of /app.py (version 2): the coordinator
// asks the process first (agent/sync) whether it runs the file.
struct SaveOfAnUnreportedFile {
  Disk disk;
  AgentId agent;
  PatchCoordinator::SaveOutcome outcome;
  std::uint64_t save;

  SaveOfAnUnreportedFile() {
    disk.files["/other.py"] = version(1);
    agent = disk.attach(100, "/other.py");
    outcome = disk.coordinator.save("/app.py", version(2));
    save = outcome.dispatches.at(0).save;
  }
};

const json applied = {{"ok", true}, {"results", json::array({{{"status", "updated"}}})}};
const json compile_failed = {{"ok", false}, {"results", json::array({{{"status", "failed"}}})}};

std::string first_op(const Dispatch& dispatch) { return dispatch.params["plan"]["changes"][0]["op"]; }

}  // namespace

TEST_CASE("a reload is sent as agent/reload, and the process's baselines become the disk text") {
  Disk disk;
  disk.files["/app.py"] = version(1);
  disk.files["/dep.py"] = "from app import value\n";
  const AgentId agent = disk.coordinator.add_agent(AgentInfo{100});
  disk.coordinator.modules_loaded(agent, {{"app", "/app.py"}, {"dep", "/dep.py"}});
  CHECK(disk.coordinator.file_of_module("dep") == "/dep.py");
  CHECK_FALSE(disk.coordinator.file_of_module("elsewhere"));
  disk.files["/app.py"] = version(2);
  disk.files["/dep.py"] = "from app import value\nLIMIT = 1\n";
  auto outcome = disk.coordinator.reload("/app.py", version(2));
  REQUIRE(outcome.dispatches.size() == 1);
  CHECK(outcome.dispatches[0].method == "agent/reload");
  CHECK_FALSE(outcome.dispatches[0].params.contains("plan"));
  const json reloaded = {{"ok", true}, {"files", {"/app.py", "/dep.py"}},
                         {"results", json::array({{{"status", "reloaded"}}})}};
  auto result = disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save, reloaded);
  REQUIRE(result.completed.size() == 1);
  CHECK(result.completed[0].processes[0].status == "applied");
  // Both files now run their disk text: saving it again sends nothing.
  for (const std::string path : {"/app.py", "/dep.py"}) {
    auto again = disk.coordinator.save(path, disk.files[path]);
    CHECK(again.dispatches.empty());
    REQUIRE(again.completed.size() == 1);
    CHECK(again.completed[0].processes[0].status == "unchanged");
  }
}

TEST_CASE("a reload that failed in the process leaves the baseline, and a save waits behind a reload") {
  Disk disk;
  disk.files["/app.py"] = version(1);
  const AgentId agent = disk.attach(100, "/app.py");
  auto outcome = disk.coordinator.reload("/app.py", version(2));
  REQUIRE(outcome.dispatches.size() == 1);
  auto save = disk.coordinator.save("/app.py", version(2));
  CHECK(save.dispatches.empty());  // queued behind the reload in flight
  const json raised = {{"ok", false}, {"files", json::array()},
                       {"results", json::array({{{"status", "failed"}}})}};
  auto result = disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save, raised);
  REQUIRE(result.completed.size() == 1);
  CHECK(result.completed[0].processes[0].status == "failed");
  // The process still runs version 1: the queued save of version 2 is sent as a plan.
  REQUIRE(result.dispatches.size() == 1);
  CHECK(result.dispatches[0].method == "agent/patch");
  CHECK(first_op(result.dispatches[0]) == "update");
}

TEST_CASE("a save nobody runs completes at once with no processes") {
  Disk disk;
  const auto outcome = disk.coordinator.save("/app.py", version(1));
  CHECK(outcome.dispatches.empty());
  REQUIRE(outcome.completed.size() == 1);
  CHECK(outcome.completed[0].ok);
  CHECK(outcome.completed[0].processes.empty());
}

TEST_CASE("a save is diffed against what the process runs, and the baseline moves when applied") {
  Disk disk;
  disk.files["/app.py"] = version(1);
  const AgentId agent = disk.attach(100, "/app.py");
  auto outcome = disk.coordinator.save("/app.py", version(2));
  REQUIRE(outcome.dispatches.size() == 1);
  CHECK(outcome.dispatches[0].agent == agent);
  CHECK(first_op(outcome.dispatches[0]) == "update");
  CHECK(outcome.dispatches[0].params["modules"] == json::array({"app"}));

  auto result = disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save, applied);
  REQUIRE(result.completed.size() == 1);
  CHECK(result.completed[0].ok);
  CHECK(result.completed[0].processes[0].status == "applied");
  CHECK(result.completed[0].processes[0].pid == 100);

  // The same text again: the process already runs it.
  outcome = disk.coordinator.save("/app.py", version(2));
  CHECK(outcome.dispatches.empty());
  REQUIRE(outcome.completed.size() == 1);
  CHECK(outcome.completed[0].processes[0].status == "unchanged");
}

TEST_CASE("a plan that failed to compile leaves the baseline where it was") {
  Disk disk;
  disk.files["/app.py"] = version(1);
  const AgentId agent = disk.attach(100, "/app.py");
  auto outcome = disk.coordinator.save("/app.py", version(2));
  auto result = disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save, compile_failed);
  CHECK(result.completed[0].processes[0].status == "failed");
  CHECK_FALSE(result.completed[0].ok);
  // Saving the first version again is no change for the process: it still runs version 1.
  outcome = disk.coordinator.save("/app.py", version(1));
  CHECK(outcome.dispatches.empty());
  CHECK(outcome.completed[0].processes[0].status == "unchanged");
}

TEST_CASE("saves during a patch coalesce to the newest, which is sent after the answer") {
  Disk disk;
  disk.files["/app.py"] = version(1);
  const AgentId agent = disk.attach(100, "/app.py");
  const auto first = disk.coordinator.save("/app.py", version(2));
  REQUIRE(first.dispatches.size() == 1);
  const auto second = disk.coordinator.save("/app.py", version(3));
  CHECK(second.dispatches.empty());  // waits behind the plan in flight
  CHECK(second.completed.empty());
  const auto third = disk.coordinator.save("/app.py", version(4));
  REQUIRE(third.completed.size() == 1);  // the second one is replaced by the third
  CHECK(third.completed[0].ticket == second.ticket);
  CHECK(third.completed[0].processes[0].status == "superseded");

  auto result = disk.coordinator.on_result(agent, "/app.py", first.dispatches[0].save, applied);
  REQUIRE(result.dispatches.size() == 1);
  CHECK(result.dispatches[0].params["plan"]["changes"][0]["source"].get<std::string>().find("return 4") !=
        std::string::npos);
  result = disk.coordinator.on_result(agent, "/app.py", result.dispatches[0].save, applied);
  REQUIRE(result.completed.size() == 1);
  CHECK(result.completed[0].ticket == third.ticket);
  CHECK(result.completed[0].processes[0].status == "applied");
}

TEST_CASE("processes that loaded different versions get different plans") {
  Disk disk;
  disk.files["/app.py"] = version(1);
  const AgentId old_process = disk.attach(100, "/app.py");
  disk.files["/app.py"] = "def value():\n    return 1\n\ndef extra():\n    pass\n";
  const AgentId new_process = disk.attach(200, "/app.py");
  const auto outcome = disk.coordinator.save("/app.py", "def value():\n    return 1\n\ndef extra():\n    pass\n");
  // The newer process already runs this text; the older one gets an `add`.
  REQUIRE(outcome.dispatches.size() == 1);
  CHECK(outcome.dispatches[0].agent == old_process);
  CHECK(first_op(outcome.dispatches[0]) == "add");
  (void)new_process;
}

TEST_CASE("a syntax error is sent to nobody and reported with its position") {
  Disk disk;
  disk.files["/app.py"] = version(1);
  disk.attach(100, "/app.py");
  const auto outcome = disk.coordinator.save("/app.py", "def value(:\n    return 2\n");
  CHECK(outcome.dispatches.empty());
  REQUIRE(outcome.completed.size() == 1);
  CHECK_FALSE(outcome.completed[0].ok);
  REQUIRE(outcome.completed[0].errors.size() >= 1);
  CHECK(outcome.completed[0].errors[0]["line"] == 1);
}

TEST_CASE("a process that goes away or does not answer completes its tickets") {
  Disk disk;
  disk.files["/app.py"] = version(1);
  const AgentId slow = disk.attach(100, "/app.py");
  const AgentId leaving = disk.attach(200, "/app.py");
  const auto outcome = disk.coordinator.save("/app.py", version(2));
  REQUIRE(outcome.dispatches.size() == 2);
  CHECK(disk.coordinator.remove_agent(leaving).empty());  // still waiting for the slow one
  const auto timed_out = disk.coordinator.on_timeout(slow, "/app.py", outcome.dispatches[0].save);
  REQUIRE(timed_out.size() == 1);
  std::map<int, std::string> statuses;
  for (const auto& process : timed_out[0].processes) statuses[process.pid] = process.status;
  CHECK(statuses[100] == "timeout");
  CHECK(statuses[200] == "exited");
  // The late answer still moves the slow process's baseline.
  disk.coordinator.on_result(slow, "/app.py", outcome.dispatches[0].save, applied);
  const auto again = disk.coordinator.save("/app.py", version(2));
  CHECK(again.dispatches.empty());
  CHECK(again.completed[0].processes[0].status == "unchanged");
}

TEST_CASE("history: what the processes loaded, each save and its outcome; revert goes one version back") {
  Disk disk;
  disk.files["/app.py"] = version(1);
  const AgentId agent = disk.attach(100, "/app.py");
  std::string why;
  CHECK_FALSE(disk.coordinator.previous_version("/app.py", why));  // only the loaded version so far
  CHECK(why.find("only version") != std::string::npos);

  auto outcome = disk.coordinator.save("/app.py", version(2));
  disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save, applied);
  REQUIRE(disk.coordinator.previous_version("/app.py", why));
  CHECK(*disk.coordinator.previous_version("/app.py", why) == version(1));

  disk.coordinator.save("/app.py", "def value(:\n");  // a syntax error is history, not a version
  outcome = disk.coordinator.save("/app.py", version(3));
  disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save, applied);
  CHECK(*disk.coordinator.previous_version("/app.py", why) == version(2));

  const auto history = disk.coordinator.history("/app.py");
  REQUIRE(history.size() == 4);
  CHECK(history[0].origin == "loaded");
  CHECK(history[1].processes == std::vector<std::pair<int, std::string>>{{100, "applied"}});
  CHECK(history[2].syntax_error);
  CHECK(history[3].completed);
  CHECK(*history[3].text == version(3));
  CHECK(disk.coordinator.history("").size() == 4);
  CHECK(disk.coordinator.history("/other.py").empty());
  CHECK_FALSE(disk.coordinator.previous_version("/other.py", why));
}

TEST_CASE("the text a process reports is its baseline, and a file changed on disk since is named") {
  Disk disk;
  disk.files["/app.py"] = version(2);  // saved while no daemon ran; the process still runs version 1
  disk.files["/same.py"] = version(7);
  const AgentId agent = disk.coordinator.add_agent(AgentInfo{100});
  const auto changed = disk.coordinator.modules_loaded(
      agent, {{"app", "/app.py", version(1)}, {"same", "/same.py", version(7)}, {"unreported", "/same.py"}});
  CHECK(changed.changed_on_disk == std::vector<std::string>{"/app.py"});
  auto outcome = disk.coordinator.save("/app.py", version(2));
  REQUIRE(outcome.dispatches.size() == 1);  // diffed against version 1, not "unchanged"
  CHECK(first_op(outcome.dispatches[0]) == "update");
  CHECK(outcome.dispatches[0].params["source"] == version(2));  // the agent keeps what it then runs
  CHECK(disk.coordinator.history("/app.py").front().text->find("return 1") != std::string::npos);
}

TEST_CASE("without a reported text the baseline is read from disk") {
  Disk disk;
  disk.files["/app.py"] = version(1);
  const AgentId agent = disk.coordinator.add_agent(AgentInfo{100});
  CHECK(disk.coordinator.modules_loaded(agent, {{"app", "/app.py"}}).changed_on_disk.empty());
  auto outcome = disk.coordinator.save("/app.py", version(1));
  CHECK(outcome.dispatches.empty());
  REQUIRE(outcome.completed.size() == 1);
  CHECK(outcome.completed[0].processes[0].status == "unchanged");
}

// --- Saves and imports: the sync barrier --------------------------------------------------------

TEST_CASE_FIXTURE(SaveOfAnUnreportedFile, "a process that has not reported the file is asked first, and patched when its answer reports it") {
  REQUIRE(outcome.dispatches.size() == 1);
  CHECK(outcome.dispatches[0].method == "agent/sync");
  CHECK(outcome.dispatches[0].params == json{{"file", "/app.py"}});
  CHECK(outcome.completed.empty());  // the ticket waits for the answer
  // The answer reports the module, imported (as version 1) since the process's last report.
  disk.coordinator.modules_loaded(agent, {{"app", "/app.py", version(1)}});
  auto synced = disk.coordinator.on_synced(agent, "/app.py", save, false);
  REQUIRE(synced.dispatches.size() == 1);
  CHECK(synced.dispatches[0].method == "agent/patch");
  CHECK(first_op(synced.dispatches[0]) == "update");
  auto result = disk.coordinator.on_result(agent, "/app.py", synced.dispatches[0].save, applied);
  REQUIRE(result.completed.size() == 1);
  CHECK(result.completed[0].processes[0].status == "applied");
}

TEST_CASE_FIXTURE(SaveOfAnUnreportedFile, "a process that does not run the file leaves the ticket without an answer of its own") {
  auto synced = disk.coordinator.on_synced(agent, "/app.py", save, false);
  CHECK(synced.dispatches.empty());
  REQUIRE(synced.completed.size() == 1);
  CHECK(synced.completed[0].processes.empty());
  CHECK(synced.completed[0].ok);
}

TEST_CASE_FIXTURE(SaveOfAnUnreportedFile, "a save of a file being imported waits for its report, and times out without losing it") {
  CHECK(disk.coordinator.on_synced(agent, "/app.py", save, true).completed.empty());
  const auto timed_out = disk.coordinator.on_sync_timeout(agent, save);
  REQUIRE(timed_out.size() == 1);
  CHECK(timed_out[0].processes[0].status == "timeout");
  // The import ends: its report brings the save, planned against the text it imported.
  auto loaded = disk.coordinator.modules_loaded(agent, {{"app", "/app.py", version(1)}});
  CHECK(loaded.changed_on_disk.empty());  // the waiting save applies the disk's text
  REQUIRE(loaded.dispatches.size() == 1);
  CHECK(first_op(loaded.dispatches[0]) == "update");
}

TEST_CASE("a sync answered after a newer save went out directly is superseded, never applied after it") {
  Disk disk;
  disk.files["/other.py"] = version(1);
  const AgentId agent = disk.attach(100, "/other.py");
  const auto first = disk.coordinator.save("/app.py", version(2)).dispatches[0].save;
  disk.coordinator.modules_loaded(agent, {{"app", "/app.py", version(1)}});  // reported meanwhile
  auto second = disk.coordinator.save("/app.py", version(3));
  REQUIRE(second.dispatches.size() == 1);
  CHECK(second.dispatches[0].method == "agent/patch");
  auto late = disk.coordinator.on_synced(agent, "/app.py", first, false);
  CHECK(late.dispatches.empty());
  REQUIRE(late.completed.size() == 1);
  CHECK(late.completed[0].processes[0].status == "superseded");
}

// --- What runs: pending rude edits, drift ----------------------------------------------------------

namespace {

std::string point(const std::string& fields, int label) {
  return "import dataclasses\n\n@dataclasses.dataclass\nclass Point:\n" + fields + "\ndef label():\n    return " +
         std::to_string(label) + "\n";
}

std::vector<std::string> ops(const Dispatch& dispatch) {
  std::vector<std::string> found;
  for (const json& change : dispatch.params["plan"]["changes"]) found.push_back(change["op"]);
  return found;
}

}  // namespace

TEST_CASE("a rude edit stays pending until the save undoes it") {
  Disk disk;
  disk.files["/app.py"] = point("    x: int = 0\n", 1);
  const AgentId agent = disk.attach(100, "/app.py");
  const std::string rude = point("    x: int = 0\n    y: int = 1\n", 2);
  auto outcome = disk.coordinator.save("/app.py", rude);
  REQUIRE(outcome.dispatches.size() == 1);
  CHECK(ops(outcome.dispatches[0]) == std::vector<std::string>{"rude", "update"});
  const json partial = {{"ok", false}, {"results", json::array({{{"status", "rude"}}, {{"status", "updated"}}})}};
  disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save, partial);

  // The same text again: not "unchanged", the field is still not applied.
  outcome = disk.coordinator.save("/app.py", rude);
  REQUIRE(outcome.dispatches.size() == 1);
  CHECK(ops(outcome.dispatches[0]) == std::vector<std::string>{"rude"});
  disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save,
                             {{"ok", false}, {"results", json::array({{{"status", "rude"}}})}});
  CHECK(disk.coordinator.describe_agent(agent)["files"][0]["rude_pending"] == json::array({"Point"}));

  // A syntax error in between forgets nothing.
  outcome = disk.coordinator.save("/app.py", rude + "def broken(:\n");
  CHECK(outcome.dispatches.empty());
  outcome = disk.coordinator.save("/app.py", rude);
  CHECK(ops(outcome.dispatches[0]) == std::vector<std::string>{"rude"});
  disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save,
                             {{"ok", false}, {"results", json::array({{{"status", "rude"}}})}});

  // The field undone: the class is what runs again; only the function's change is left.
  outcome = disk.coordinator.save("/app.py", point("    x: int = 0\n", 3));
  REQUIRE(outcome.dispatches.size() == 1);
  CHECK(ops(outcome.dispatches[0]) == std::vector<std::string>{"update"});
  disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save, applied);
  CHECK_FALSE(disk.coordinator.describe_agent(agent)["files"][0].contains("rude_pending"));
  outcome = disk.coordinator.save("/app.py", point("    x: int = 0\n", 3));
  CHECK(outcome.completed[0].processes[0].status == "unchanged");
}

TEST_CASE("definitions that do not run the reported text are updated by the next save, even unchanged") {
  Disk disk;
  const std::string text = "def price(x):\n    return x + 100\n\ndef other():\n    return 0\n";
  disk.files["/app.py"] = text;
  const AgentId agent = disk.coordinator.add_agent(AgentInfo{100});
  LoadedModule module{"app", "/app.py", text};
  module.drift.differs = {"price"};
  module.drift.missing = {"extra"};
  auto loaded = disk.coordinator.modules_loaded(agent, {module});
  CHECK(loaded.changed_on_disk == std::vector<std::string>{"/app.py"});  // caught up when watched
  const std::string with_extra = text + "\ndef extra():\n    return 5\n";
  auto outcome = disk.coordinator.save("/app.py", with_extra);
  REQUIRE(outcome.dispatches.size() == 1);
  // price: forced; extra: a new definition anyway.
  CHECK(ops(outcome.dispatches[0]) == std::vector<std::string>{"update", "add"});
  disk.coordinator.on_result(agent, "/app.py", outcome.dispatches[0].save, applied);
  outcome = disk.coordinator.save("/app.py", with_extra);
  CHECK(outcome.completed[0].processes[0].status == "unchanged");
}

TEST_CASE("an answer for a save the process does not have in flight changes nothing") {
  // Found by tests/fuzz/agent_protocol_fuzzer: taken, it made that save's text the baseline and
  // dropped the save in flight, whose ticket never completed.
  Disk disk;
  disk.files["/app.py"] = version(1);
  const AgentId first = disk.attach(100, "/app.py");
  const AgentId second = disk.attach(200, "/app.py");
  auto one = disk.coordinator.save("/app.py", version(2));
  REQUIRE(one.dispatches.size() == 2);
  REQUIRE(one.dispatches[0].agent == first);
  auto two = disk.coordinator.save("/app.py", version(3));  // pending behind `one` for both
  CHECK(disk.coordinator.on_result(first, "/app.py", one.dispatches[0].save + 100, applied).completed.empty());
  CHECK(disk.coordinator.on_result(first, "/app.py", one.dispatches[0].save + 1, applied).completed.empty());  // two's
  // `one` is still in flight: its answers complete it, and `two` goes out after.
  disk.coordinator.on_result(second, "/app.py", one.dispatches[1].save, applied);
  auto answered = disk.coordinator.on_result(first, "/app.py", one.dispatches[0].save, applied);
  REQUIRE(answered.completed.size() == 1);
  CHECK(answered.completed[0].ticket == one.ticket);
  REQUIRE(answered.dispatches.size() == 1);
  CHECK(answered.dispatches[0].params["source"] == version(3));
}

TEST_CASE_FIXTURE(SaveOfAnUnreportedFile, "a sync answer naming another file than its save's is not taken") {
  // Found by tests/fuzz/agent_protocol_fuzzer: it planned the save against a file never saved.
  auto wrong = disk.coordinator.on_synced(agent, "/elsewhere.py", save, false);
  CHECK(wrong.dispatches.empty());
  CHECK(wrong.completed.empty());  // the ticket still waits for this process's answer
  disk.coordinator.modules_loaded(agent, {{"app", "/app.py", version(1)}});
  auto synced = disk.coordinator.on_synced(agent, "/app.py", save, false);
  REQUIRE(synced.dispatches.size() == 1);
  CHECK(synced.dispatches[0].method == "agent/patch");
}
