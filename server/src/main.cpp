// `hotd`: the command line. Each subcommand lives in its own file; this one only parses arguments.
#include <iostream>

#include <CLI/CLI.hpp>

#include "attach_command.hpp"
#include "daemon_commands.hpp"
#include "lsp_bridge.hpp"
#include "source_commands.hpp"

namespace {

// `hotd run` takes options up to the script (or -m module); everything after belongs to the program.
CLI::App* add_run_command(CLI::App& app, hotd::cli::RunOptions& run) {
  CLI::App* command = app.add_subcommand("run", "Run a Python program with live patching: script.py [args...] or -m module [args...].");
  command->prefix_command();
  command->add_option("--python", run.python, "Interpreter to run (default: python3 on PATH, so an active venv is used)");
  command->add_option("-m", run.module, "Run a library module as a script, like python -m");
  command->add_flag("--no-watch", run.no_watch, "Do not watch the program's directory for saved .py files");
  command->add_option("--watch", run.watch, "Also watch this directory (repeatable)")->type_name("DIR")->type_size(1)->allow_extra_args(false);
  command->add_option("--debounce", run.debounce_ms, "Wait this many ms after a file's last change before patching (default 0)")
      ->type_name("MS");
  command->add_option("--include", run.include, "Only watch files matching this glob (repeatable; relative path or name)")
      ->type_name("GLOB")->type_size(1)->allow_extra_args(false);
  command->add_option("--exclude", run.exclude, "Do not watch files matching this glob (repeatable)")
      ->type_name("GLOB")->type_size(1)->allow_extra_args(false);
  command->add_option("--poll", run.poll_seconds, "Poll the program's files every N seconds instead of inotify (network file systems)")
      ->type_name("SECONDS");
  command->add_flag("-q,--quiet", run.quiet, "Print nothing about patches");
  command->add_flag("-v,--verbose", run.verbose, "Print what is watched and every patch event, with timings");
  command->add_flag("-i,--interactive", run.interactive,
                    "When the program ends (or on Ctrl+C), open a Python prompt in its namespace, still live-patched");
  command->add_option("--connect", run.connect,
                      "Connect to a daemon over TCP (one started with `hotd serve --listen`): for a program in a "
                      "container or on another machine")
      ->type_name("HOST:PORT");
  command->add_option("--token-file", run.token_file,
                      "With --connect: the daemon's web.json (or a file holding its token), read at every connection")
      ->type_name("FILE");
  command->add_option("--map", run.path_map,
                      "With --connect: this process sees the editor's LOCAL_PREFIX as REMOTE_PREFIX (repeatable)")
      ->type_name("REMOTE_PREFIX:LOCAL_PREFIX")
      ->type_size(1)
      ->allow_extra_args(false);  // one value per --map: the script follows
  command->footer(
      "The program runs as `python script.py args` would: same argv, sys.path[0], __file__, exit status, signals.\n"
      "Saves of its files (by an editor with hotd, `hotd patch`, or any editor when watching) patch it live;\n"
      "one line per event goes to stderr: `hotd: updated shop.price (line 12)`.");
  return command;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hotd: save a Python file, see the new code running in your live processes."};
  app.set_version_flag("--version", std::string("hotd ") + HOTD_VERSION);
  app.require_subcommand(1);

  hotd::cli::DiffOptions diff;
  CLI::App* diff_command = app.add_subcommand(
      "diff", "Show what saving NEW over OLD would patch: updates, shifts, adds, deletes, statements to re-run, "
              "and rude edits that cannot be applied in place.");
  diff_command->add_option("OLD", diff.old_path, "The version the process runs")->required();
  diff_command->add_option("NEW", diff.new_path, "The version being saved")->required();
  diff_command->add_flag("--json", diff.json, "Print the plan as JSON (schema in docs/PROTOCOL.md)");
  diff_command->footer("Exit status: 0 when a plan was produced, 1 when NEW has syntax errors, 2 on usage or I/O errors.");

  hotd::cli::OutlineOptions outline;
  CLI::App* outline_command =
      app.add_subcommand("outline", "List the definitions hotd sees in FILE: functions, classes, statements.");
  outline_command->add_option("FILE", outline.path, "A Python source file")->required();
  outline_command->add_flag("--json", outline.json, "Print the definition tree as JSON");

  hotd::cli::RunOptions run;
  CLI::App* run_command = add_run_command(app, run);

  hotd::cli::PatchOptions patch;
  CLI::App* patch_command = app.add_subcommand(
      "patch", "Send FILE's current content as a save, wait for every process that loaded it, and print the results.");
  patch_command->add_option("FILE", patch.path, "The saved Python file")->required();
  patch_command->add_flag("--json", patch.json, "Print the results as JSON");
  patch_command->add_option("--timeout", patch.timeout_seconds, "Seconds to wait for all processes (default 30)");
  patch_command->footer("Exit status: 0 when every process applied everything, 1 when any part was rude or failed, 2 on errors.");

  hotd::cli::ReloadOptions reload;
  CLI::App* reload_command = app.add_subcommand(
      "reload", "Re-execute a module from disk in every process that loaded it (for rude edits), update its old "
                "functions in place, move instances to its re-created classes, and reload the modules importing from it.");
  reload_command->add_option("MODULE|FILE", reload.target, "A module name (shop.cart) or its file")->required();
  reload_command->add_flag("--json", reload.json, "Print the results as JSON");
  reload_command->add_option("--timeout", reload.timeout_seconds, "Seconds to wait for all processes (default 60)");
  reload_command->footer("Exit status: 0 when every process reloaded and migrated everything, 1 when a module failed or "
                         "instances could not be migrated, 2 on errors.");

  bool ps_json = false;
  CLI::App* ps_command = app.add_subcommand("ps", "List the Python processes attached to hotd.");
  ps_command->add_flag("--json", ps_json, "Print as JSON");

  bool status_json = false;
  CLI::App* status_command = app.add_subcommand("status", "Show the daemon: pid, uptime, socket, editors and processes.");
  status_command->add_flag("--json", status_json, "Print as JSON");

  hotd::cli::AttachOptions attach;
  CLI::App* attach_command = app.add_subcommand(
      "attach", "Inject the agent into a running Python process (3.7 to 3.13, Linux x86_64) so that saves patch it.");
  attach_command->add_option("PID", attach.pid, "Process id of a running Python program")->required();
  attach_command->add_option("--timeout", attach.timeout_seconds, "Seconds to wait for a safe point and for the agent (default 5)");
  attach_command->add_flag("--json", attach.json, "Print the attached process as JSON");
  attach_command->footer("Exit status: 0 when attached (or already attached), 1 when the agent loaded but the process never "
                         "released the GIL in time, 2 when nothing was done (with the reason).");

  hotd::cli::RevertOptions revert;
  CLI::App* revert_command = app.add_subcommand(
      "revert", "Patch the processes running FILE back to the version before the last one (the file is not changed).");
  revert_command->add_option("FILE", revert.path, "A Python file the processes run")->required();
  revert_command->add_flag("--json", revert.json, "Print the results as JSON");
  revert_command->add_option("--timeout", revert.timeout_seconds, "Seconds to wait for all processes (default 30)");

  hotd::cli::LogOptions log;
  CLI::App* log_command = app.add_subcommand("log", "Show the history of versions sent to the processes, and what they did.");
  log_command->add_option("FILE", log.path, "Only this file");
  log_command->add_flag("--json", log.json, "Print as JSON");

  int detach_pid = 0;
  CLI::App* detach_command = app.add_subcommand("detach", "Stop patching a process (it keeps running; patched code stays).");
  detach_command->add_option("PID", detach_pid, "Process id")->required();

  hotd::cli::ServeOptions serve;
  CLI::App* serve_command = app.add_subcommand(
      "serve", "Start the daemon (other commands start it when needed). It runs in the background unless --foreground.");
  serve_command->add_flag("--foreground", serve.foreground, "Stay in the foreground and log to stderr");
  serve_command->add_flag("--quiet", serve.quiet, "Print nothing on success");
  serve_command->add_option("--patch-timeout-ms", serve.patch_timeout_ms, "How long a process may take to answer a patch");
  serve_command->add_option("--listen", serve.listen,
                            "Also accept agents over TCP on ADDR:PORT (PORT alone: loopback; 0: any free port), for "
                            "processes in containers or on other machines (repeatable; the token is the only protection)")
      ->type_name("ADDR:PORT");
  serve_command->add_option("--allow-origin", serve.allowed_origins,
                            "Allow WebSocket connections from this browser origin, e.g. http://localhost:8080 (repeatable)")
      ->type_name("ORIGIN");
  serve_command->add_option("--max-connections", serve.max_connections,
                            "Connections at once (processes, editors, commands) on the socket, and again on the web "
                            "port (1 to 1048576; default 1024)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20).description(""))
      ->type_name("N");

  CLI::App* stop_command = app.add_subcommand("stop", "Stop the daemon. Attached processes keep running and reconnect to the next one.");

  CLI::App* lsp_command = app.add_subcommand(
      "lsp", "Run the language server on stdin/stdout, for editors that launch a command (starts the daemon when needed).");
  lsp_command->footer("Exit status: 0 after LSP shutdown and exit, 1 when the daemon went away (restart the server), 2 when it cannot start.");
  // Many clients (vscode-languageclient, coc, lsp-mode) pass --stdio: it is the only transport here.
  bool stdio = true;
  lsp_command->add_flag("--stdio", stdio, "Use stdin and stdout (the default; accepted for clients that pass it)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return hotd::cli::kExitUsage;
  }

  if (*diff_command) return hotd::cli::run_diff(diff);
  if (*outline_command) return hotd::cli::run_outline(outline);
  if (*run_command) {
    run.command = run_command->remaining();
    if (run.module.empty() && run.command.empty()) {
      std::cerr << "hotd run: give a script (hotd run app.py) or a module (hotd run -m package.app)\n";
      return hotd::cli::kExitUsage;
    }
    return hotd::cli::run_run(run);
  }
  if (*patch_command) return hotd::cli::run_patch(patch);
  if (*reload_command) return hotd::cli::run_reload(reload);
  if (*ps_command) return hotd::cli::run_ps(ps_json);
  if (*status_command) return hotd::cli::run_status(status_json);
  if (*attach_command) return hotd::cli::run_attach(attach);
  if (*detach_command) return hotd::cli::run_detach(detach_pid);
  if (*revert_command) return hotd::cli::run_revert(revert);
  if (*log_command) return hotd::cli::run_log(log);
  if (*serve_command) return hotd::cli::run_serve(serve);
  if (*stop_command) return hotd::cli::run_stop();
  if (*lsp_command) return hotd::cli::run_lsp_bridge();
  return hotd::cli::kExitUsage;
}
