// The hotd extension: runs `hotd lsp` as a language server for Python files. Saving a file sends
// `textDocument/didSave`, and the daemon patches every process running it; results come back as
// diagnostics (rude edits, failures, syntax errors) and as `hotd/patched` notifications.
import * as path from "path";
import * as vscode from "vscode";
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  Trace,
} from "vscode-languageclient/node";
import { findHotd, notFoundMessage } from "./hotdExecutable";
import {
  AttachedProcess,
  PATCHED_NOTIFICATION,
  PROCESSES_CHANGED_NOTIFICATION,
  PatchedParams,
  describePatch,
  describeProcess,
  describeResult,
  isProblem,
  shownResults,
} from "./protocol";
import { listRunningPythons } from "./pythonProcesses";
import { HotdStatusBar } from "./statusBar";

type Verbosity = "errors" | "normal" | "verbose";

function settings() {
  const config = vscode.workspace.getConfiguration("hotd");
  return {
    path: config.get<string>("path", "hotd"),
    patchOnSave: config.get<boolean>("patchOnSave", true),
    verbosity: config.get<Verbosity>("verbosity", "normal"),
  };
}

class HotdExtension implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private hotdPath: string | undefined;
  private readonly output = vscode.window.createOutputChannel("hotd");
  private readonly serverOutput = vscode.window.createOutputChannel("hotd (language server)");
  private readonly status = new HotdStatusBar();

  async start(): Promise<void> {
    const { path: setting, verbosity } = settings();
    const folders = (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath);
    const search = findHotd(setting, folders);
    this.hotdPath = search.found;
    if (!this.hotdPath) {
      const message = notFoundMessage(setting, search);
      this.status.setProblem(message);
      this.output.appendLine(message);
      const choice = await vscode.window.showErrorMessage(message, "Open Settings");
      if (choice) await vscode.commands.executeCommand("workbench.action.openSettings", "hotd.path");
      return;
    }
    // No `transport`: with TransportKind.stdio the client would append `--stdio` to the arguments.
    const serverOptions: ServerOptions = { command: this.hotdPath, args: ["lsp"] };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file", language: "python" }],
      outputChannel: this.serverOutput,
      traceOutputChannel: this.serverOutput,
      middleware: {
        // The server patches on every didSave: not sending it is how "patch on save: off" works.
        didSave: (document, next) => (settings().patchOnSave ? next(document) : Promise.resolve()),
      },
    };
    const client = new LanguageClient("hotd", "hotd", serverOptions, clientOptions);
    client.onNotification(PATCHED_NOTIFICATION, (patched: PatchedParams) => this.onPatched(patched));
    // The server says when processes come and go: nothing is polled.
    client.onNotification(PROCESSES_CHANGED_NOTIFICATION, (changed: { processes?: AttachedProcess[] }) =>
      this.status.setProcesses(changed.processes ?? []),
    );
    client.onDidChangeState((change) => {
      if (change.newState === State.Stopped) this.status.setProblem(`hotd: the language server (${this.hotdPath} lsp) stopped`);
    });
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      const message = `hotd: "${this.hotdPath} lsp" failed to start: ${error instanceof Error ? error.message : String(error)}`;
      this.status.setProblem(message);
      this.output.appendLine(message);
      void vscode.window.showErrorMessage(message);
      return;
    }
    await client.setTrace(verbosity === "verbose" ? Trace.Verbose : Trace.Off);
    this.output.appendLine(`hotd: language server started (${this.hotdPath} lsp)`);
    await this.refreshProcesses();
  }

  async restart(): Promise<void> {
    await this.stopClient();
    await this.start();
  }

  async dispose(): Promise<void> {
    await this.stopClient();
    this.status.dispose();
    this.output.dispose();
    this.serverOutput.dispose();
  }

  // --- Commands -----------------------------------------------------------------------------------

  async attachToProcess(): Promise<void> {
    const [running, attached] = await Promise.all([listRunningPythons(), this.attachedProcesses()]);
    const attachedPids = new Set(attached.map((p) => p.pid));
    const items = running.map((p) => ({
      label: String(p.pid),
      description: attachedPids.has(p.pid) ? "attached" : undefined,
      detail: p.commandLine,
      pid: p.pid,
    }));
    if (items.length === 0) {
      void vscode.window.showInformationMessage("hotd: no running Python process of yours was found.");
      return;
    }
    const picked = await vscode.window.showQuickPick(items, {
      title: "hotd: Attach to Process",
      placeHolder: "A running Python process to patch on save",
      matchOnDetail: true,
    });
    if (!picked) return;
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `hotd: attaching to pid ${picked.pid}...` },
      async () => {
        try {
          await this.executeCommand("hotd.attach", [picked.pid]);
          this.output.appendLine(`attached to pid ${picked.pid}: ${picked.detail}`);
          void vscode.window.showInformationMessage(`hotd: attached to pid ${picked.pid}; saves now patch it.`);
        } catch (error) {
          this.reportError(`hotd: could not attach to pid ${picked.pid}`, error);
        }
      },
    );
    await this.refreshProcesses();
  }

  async detach(): Promise<void> {
    const picked = await this.pickAttached("hotd: Detach", "The process to stop patching (it keeps running)");
    if (!picked) return;
    try {
      await this.executeCommand("hotd.detach", [picked.pid]);
      this.output.appendLine(`detached from pid ${picked.pid}`);
    } catch (error) {
      this.reportError(`hotd: could not detach from pid ${picked.pid}`, error);
    }
    await this.refreshProcesses();
  }

  async showProcesses(): Promise<void> {
    const picked = await this.pickAttached("hotd: Attached Processes", "Pick one to open a file it runs");
    if (!picked) return;
    const files = (picked.files ?? []).map((f) => ({ label: path.basename(f.file), description: f.modules.join(", "), file: f.file }));
    const file = await vscode.window.showQuickPick(files, { title: `hotd: files run by pid ${picked.pid}` });
    if (file) await vscode.window.showTextDocument(vscode.Uri.file(file.file));
  }

  async runCurrentFile(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.document.languageId !== "python" || editor.document.uri.scheme !== "file") {
      void vscode.window.showWarningMessage("hotd: open a Python file to run it with hotd.");
      return;
    }
    if (!this.hotdPath) return this.reportError("hotd: cannot run", new Error("the hotd executable was not found"));
    if (editor.document.isDirty) await editor.document.save();
    const file = editor.document.uri.fsPath;
    const terminal = vscode.window.createTerminal({ name: `hotd run ${path.basename(file)}`, cwd: path.dirname(file) });
    terminal.show();
    terminal.sendText(`${shellQuote(this.hotdPath)} run ${shellQuote(file)}`);
    setTimeout(() => void this.refreshProcesses(), 2000);
  }

  async showLastPatch(): Promise<void> {
    const patched = this.status.last;
    if (!patched) {
      void vscode.window.showInformationMessage("hotd: no patch yet. Save a Python file that an attached process runs.");
      return;
    }
    const items: (vscode.QuickPickItem & { line?: number })[] = [];
    for (const error of patched.errors) items.push({ label: `$(error) line ${error.line}: ${error.message}`, line: error.line });
    for (const outcome of patched.processes) {
      items.push({ label: `pid ${outcome.pid}`, kind: vscode.QuickPickItemKind.Separator });
      items.push({ label: `${isProblem(outcome.status) ? "$(warning)" : "$(check)"} ${outcome.status}` });
      for (const result of shownResults(outcome)) {
        items.push({ label: describeResult(result), description: result.module ?? undefined, line: result.line ?? undefined });
      }
    }
    const picked = await vscode.window.showQuickPick(items, { title: `hotd: last patch of ${path.basename(patched.file)}` });
    if (picked?.line) {
      const position = new vscode.Position(picked.line - 1, 0);
      await vscode.window.showTextDocument(vscode.Uri.parse(patched.uri), { selection: new vscode.Range(position, position) });
    }
  }

  // --- Internals ----------------------------------------------------------------------------------

  private onPatched(patched: PatchedParams): void {
    this.status.setPatched(patched);
    const problem = !patched.ok || patched.processes.some((p) => isProblem(p.status));
    if (settings().verbosity !== "errors" || problem) {
      for (const line of describePatch(patched)) this.output.appendLine(`[${new Date().toLocaleTimeString()}] ${line}`);
    }
    void this.refreshProcesses();
  }

  private async refreshProcesses(): Promise<void> {
    if (this.client?.state !== State.Running) return;
    try {
      this.status.setProcesses(await this.attachedProcesses());
    } catch {
      // The next refresh tries again; a stopped server is reported by onDidChangeState.
    }
  }

  private async attachedProcesses(): Promise<AttachedProcess[]> {
    const reply = (await this.executeCommand("hotd.listProcesses", [])) as { processes?: AttachedProcess[] };
    return reply?.processes ?? [];
  }

  private async pickAttached(title: string, placeHolder: string): Promise<AttachedProcess | undefined> {
    const processes = await this.attachedProcesses().catch((error) => {
      this.reportError("hotd: cannot list processes", error);
      return undefined;
    });
    if (!processes) return undefined;
    if (processes.length === 0) {
      void vscode.window.showInformationMessage("hotd: no attached process. Run a file with hotd or attach to one.");
      return undefined;
    }
    const items = processes.map((p) => ({
      label: describeProcess(p),
      description: p.python_version ? `Python ${p.python_version}` : undefined,
      detail: (p.files ?? []).map((f) => path.basename(f.file)).join(", "),
      process: p,
    }));
    return (await vscode.window.showQuickPick(items, { title, placeHolder, matchOnDetail: true }))?.process;
  }

  private async executeCommand(command: string, args: unknown[]): Promise<unknown> {
    if (!this.client || this.client.state !== State.Running) throw new Error("the hotd language server is not running");
    return this.client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
  }

  private reportError(what: string, error: unknown): void {
    const message = `${what}: ${error instanceof Error ? error.message : String(error)}`;
    this.output.appendLine(message);
    void vscode.window.showErrorMessage(message);
  }

  private async stopClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client?.isRunning()) await client.stop();
  }
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

let extension: HotdExtension | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const hotd = new HotdExtension();
  extension = hotd;
  context.subscriptions.push(
    // Not hotd.attach/detach/listProcesses/patchFile: the language client registers the server's commands.
    vscode.commands.registerCommand("hotd.attachToProcess", () => hotd.attachToProcess()),
    vscode.commands.registerCommand("hotd.detachProcess", () => hotd.detach()),
    vscode.commands.registerCommand("hotd.runCurrentFile", () => hotd.runCurrentFile()),
    vscode.commands.registerCommand("hotd.showProcesses", () => hotd.showProcesses()),
    vscode.commands.registerCommand("hotd.showLastPatch", () => hotd.showLastPatch()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("hotd.path") || event.affectsConfiguration("hotd.verbosity")) void hotd.restart();
    }),
  );
  await hotd.start();
}

export async function deactivate(): Promise<void> {
  await extension?.dispose();
  extension = undefined;
}
