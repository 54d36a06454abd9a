// Running Python processes of this user, read from /proc, for "hotd: Attach to Process...".
import { promises as fs } from "fs";

export interface RunningPython {
  pid: number;
  commandLine: string;
}

// A process whose executable is named python, python3, python3.12, pythonw... (not python-config).
const PYTHON_EXECUTABLE = /^python[0-9.]*$/;

export async function listRunningPythons(): Promise<RunningPython[]> {
  const uid = process.getuid?.();
  const found: RunningPython[] = [];
  for (const entry of await fs.readdir("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (uid !== undefined && (await fs.stat(`/proc/${pid}`)).uid !== uid) continue;
      const argv = (await fs.readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").filter((a) => a.length > 0);
      const executable = await fs.readlink(`/proc/${pid}/exe`).catch(() => argv[0] ?? "");
      if (!PYTHON_EXECUTABLE.test(executable.slice(executable.lastIndexOf("/") + 1))) continue;
      found.push({ pid, commandLine: argv.join(" ") });
    } catch {
      // The process exited while we looked, or is not ours to read.
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}
