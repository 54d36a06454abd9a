// The status bar item: attached processes and the last patch result; a click shows the details.
import * as vscode from "vscode";
import { AttachedProcess, PatchedParams, describePatch, describeProcess, isProblem, shortSummary } from "./protocol";

export class HotdStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("hotd.status", vscode.StatusBarAlignment.Left, 50);
  private processes: AttachedProcess[] = [];
  private lastPatch: PatchedParams | undefined;
  private problem: string | undefined;

  constructor() {
    this.item.name = "hotd";
    this.item.command = "hotd.showLastPatch";
    this.render();
    this.item.show();
  }

  get last(): PatchedParams | undefined {
    return this.lastPatch;
  }

  setProcesses(processes: AttachedProcess[]): void {
    this.processes = processes;
    this.problem = undefined;
    this.render();
  }

  setPatched(patched: PatchedParams): void {
    this.lastPatch = patched;
    this.render();
  }

  /** hotd cannot run (not found, or the language server stopped): say so until it runs again. */
  setProblem(text: string): void {
    this.problem = text;
    this.render();
  }

  dispose(): void {
    this.item.dispose();
  }

  private render(): void {
    if (this.problem) {
      this.item.text = "$(error) hotd";
      this.item.tooltip = this.problem;
      this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
      return;
    }
    const count = this.processes.length;
    let text = `$(zap) hotd: ${count} process${count === 1 ? "" : "es"}`;
    if (this.lastPatch) text += ` · ${shortSummary(this.lastPatch)}`;
    this.item.text = text;
    const problem = this.lastPatch?.processes.some((p) => isProblem(p.status)) || (this.lastPatch && !this.lastPatch.ok);
    this.item.backgroundColor = problem ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;

    const tooltip = new vscode.MarkdownString();
    tooltip.appendMarkdown("**hotd**: attached processes\n\n");
    for (const process of this.processes) tooltip.appendMarkdown(`- \`${describeProcess(process)}\`\n`);
    if (count === 0) tooltip.appendMarkdown("none: run a file with *hotd: Run Current File with hotd* or attach\n");
    if (this.lastPatch) {
      tooltip.appendMarkdown("\n**Last patch**\n\n");
      tooltip.appendCodeblock(describePatch(this.lastPatch).join("\n"), "text");
    }
    tooltip.appendMarkdown("\nClick for details.");
    this.item.tooltip = tooltip;
  }
}
