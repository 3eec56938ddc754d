// Where the browser suites find Chromium: $CHROMIUM (a path, or a command name), else
// `chromium`, looked up on PATH as scripts/clients.sh looks for it, so that the check
// there and the browser launched here are the same program.

import { accessSync, constants } from "node:fs";
import { join } from "node:path";

/** The Chromium executable to launch; throws naming what is missing. */
export function chromiumPath() {
  const name = process.env.CHROMIUM || "chromium";
  if (name.includes("/")) return name;
  for (const dir of (process.env.PATH ?? "").split(":").filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here: the next directory.
    }
  }
  throw new Error(`${name} is not on PATH (Debian: apt-get install chromium), and $CHROMIUM is not set`);
}
