// `hotd`: the command line. Each subcommand lives in its own file; this one only parses arguments.
#include <iostream>

#include <CLI/CLI.hpp>

#include "source_commands.hpp"

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
  return hotd::cli::kExitUsage;
}
