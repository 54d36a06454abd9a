// Where the `hotd` executable is: the `hotd.path` setting, as a path or a name looked up on PATH.
import { accessSync, constants, statSync } from "fs";
import * as path from "path";

function isExecutableFile(candidate: string): boolean {
  try {
    accessSync(candidate, constants.X_OK);
    return statSync(candidate).isFile();
  } catch {
    return false;
  }
}

/** The absolute path of the executable, or undefined when there is none. */
export function findHotd(setting: string, searchPath: string = process.env.PATH ?? ""): string | undefined {
  const wanted = setting.trim() || "hotd";
  if (wanted.includes("/")) {
    const absolute = path.resolve(wanted.replace(/^~(?=\/)/, process.env.HOME ?? "~"));
    return isExecutableFile(absolute) ? absolute : undefined;
  }
  for (const directory of searchPath.split(path.delimiter)) {
    if (!directory) continue;
    const candidate = path.join(directory, wanted);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}
