// The parts of hotd's editor protocol this extension reads (docs/PROTOCOL.md), and plain-text
// summaries of them. No vscode import: this file is about data only.

/** An attached process, as `hotd.listProcesses` and `hotd ps --json` describe it. */
export interface AttachedProcess {
  pid: number;
  python_version?: string;
  executable?: string;
  argv?: string[];
  cwd?: string;
  launcher?: string;
  files?: { file: string; modules: string[]; patching: boolean }[];
}

/** One change applied (or not) in one module of one process. */
export interface DefinitionResult {
  op?: string;
  kind?: string;
  qualname?: string | null;
  line?: number | null;
  status: string;
  message?: string;
  module?: string | null;
  error?: { type?: string; message?: string } | string | null;
}

export interface ProcessOutcome {
  pid: number;
  /** `applied`, `unchanged`, `partial`, `failed` or `timeout`. */
  status: string;
  result: { ok?: boolean; results?: DefinitionResult[]; error?: { type?: string; message?: string } | string | null };
}

/** The `hotd/patched` notification: the result of a save, from any editor, `hotd patch` or a watcher. */
export interface PatchedParams {
  uri: string;
  file: string;
  ok: boolean;
  errors: { line: number; column: number; message: string }[];
  processes: ProcessOutcome[];
}

export const PATCHED_NOTIFICATION = "hotd/patched";

/** Sent when a process registers or goes away: the attached processes, as `hotd.listProcesses` answers. */
export const PROCESSES_CHANGED_NOTIFICATION = "hotd/processesChanged";

/** Statuses that need the user's attention. */
export function isProblem(status: string): boolean {
  return status === "failed" || status === "partial" || status === "timeout" || status === "rude";
}

export function errorText(error: DefinitionResult["error"]): string {
  if (!error) return "";
  if (typeof error === "string") return error;
  return `${error.type ?? "error"}: ${error.message ?? ""}`;
}

/** "updated price_of (line 14)", "rude Point (line 5): dataclass fields changed". */
export function describeResult(result: DefinitionResult): string {
  let text = `${result.status} ${result.qualname ?? result.kind ?? "statement"}`;
  if (typeof result.line === "number") text += ` (line ${result.line})`;
  const why = result.status === "failed" ? errorText(result.error) || result.message : result.message;
  if ((result.status === "rude" || result.status === "failed") && why) text += `: ${why}`;
  return text;
}

/** The results worth showing: everything but skips of unchanged code. */
export function shownResults(outcome: ProcessOutcome): DefinitionResult[] {
  return (outcome.result?.results ?? []).filter((r) => r.status !== "skipped");
}

/** One line for the status bar: "✓ shop.py: updated price_of", "⚠ shop.py: 1 rude". */
export function shortSummary(patched: PatchedParams): string {
  const name = baseName(patched.file);
  if (!patched.ok && patched.errors.length > 0) return `✗ ${name}: syntax error`;
  if (patched.processes.length === 0) return `${name}: no process runs it`;
  const counts = new Map<string, number>();
  for (const outcome of patched.processes) {
    const results = shownResults(outcome);
    if (results.length === 0) counts.set(outcome.status, (counts.get(outcome.status) ?? 0) + 1);
    for (const result of results) counts.set(result.status, (counts.get(result.status) ?? 0) + 1);
  }
  const problem = patched.processes.some((p) => isProblem(p.status));
  const parts = [...counts].map(([status, count]) => `${count} ${status}`);
  return `${problem ? "⚠" : "✓"} ${name}: ${parts.join(", ")}`;
}

/** Log lines for the output channel: one per process, one per result under it. */
export function describePatch(patched: PatchedParams): string[] {
  const name = baseName(patched.file);
  if (patched.errors.length > 0) {
    return [`${name}: syntax errors, nothing applied`, ...patched.errors.map((e) => `  line ${e.line}:${e.column} ${e.message}`)];
  }
  if (patched.processes.length === 0) return [`${name}: saved; no attached process runs it`];
  const lines: string[] = [];
  for (const outcome of patched.processes) {
    const processError = errorText(outcome.result?.error ?? null);
    lines.push(`${name} in pid ${outcome.pid}: ${outcome.status}${processError ? `: ${processError}` : ""}`);
    for (const result of shownResults(outcome)) lines.push(`  ${describeResult(result)}`);
  }
  return lines;
}

/** "1234 python3 app.py --port 8000" */
export function describeProcess(process: AttachedProcess): string {
  const command = (process.argv ?? []).join(" ") || process.executable || "python";
  return `${process.pid} ${command}`;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
