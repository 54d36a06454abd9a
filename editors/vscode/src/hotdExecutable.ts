// Where the `hotd` executable is: the `hotd.path` setting, as a path or a name looked up on PATH,
// then the places hotd is installed or built. The extension host may not have the PATH of the shell
// the user works in (it reads the login shell's), so a PATH miss alone is not the end of the search.
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

export interface HotdSearch {
  /** The absolute path of the executable, when one was found. */
  found?: string;
  /** Every place looked at, in order, for the message when none was found. */
  tried: string[];
}

/**
 * Looks for hotd: an explicit path in the setting is the only place looked at; a name is looked up on
 * PATH, then in ~/.local/bin (the setup script's default prefix), /usr/local/bin, /usr/bin, and the
 * build of a checkout among the workspace folders (`build/server/hotd`).
 */
export function findHotd(
  setting: string,
  workspaceFolders: readonly string[] = [],
  searchPath: string = process.env.PATH ?? "",
  home: string = process.env.HOME ?? "",
): HotdSearch {
  const wanted = setting.trim() || "hotd";
  if (wanted.includes("/")) {
    const absolute = path.resolve(wanted.replace(/^~(?=\/)/, home || "~"));
    return isExecutableFile(absolute) ? { found: absolute, tried: [absolute] } : { tried: [absolute] };
  }
  const directories = searchPath.split(path.delimiter).filter((directory) => directory);
  const candidates = directories.map((directory) => path.join(directory, wanted));
  const installed = [home ? path.join(home, ".local", "bin") : "", "/usr/local/bin", "/usr/bin"];
  candidates.push(...installed.filter((directory) => directory).map((directory) => path.join(directory, wanted)));
  if (wanted === "hotd") candidates.push(...workspaceFolders.map((folder) => path.join(folder, "build", "server", "hotd")));
  const tried: string[] = [];
  for (const candidate of candidates) {
    if (tried.includes(candidate)) continue;
    tried.push(candidate);
    if (isExecutableFile(candidate)) return { found: candidate, tried };
  }
  return { tried };
}

/** "cannot find ..." with the places looked at: PATH as one entry, the rest by name. */
export function notFoundMessage(setting: string, search: HotdSearch, searchPath: string = process.env.PATH ?? ""): string {
  const onPath = new Set(searchPath.split(path.delimiter).filter((d) => d));
  const places = setting.includes("/")
    ? search.tried
    : (onPath.size ? ["PATH"] : []).concat(search.tried.filter((candidate) => !onPath.has(path.dirname(candidate))));
  const where = places.join(", ");
  return `hotd: cannot find the hotd executable "${setting || "hotd"}" (looked in ${where}). ` +
    `Install hotd or set "hotd.path" to its full path.`;
}
