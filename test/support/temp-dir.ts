/**
 * Private temporary directories for tests (mode 0700, as mkdtemp makes
 * them), removed after the test whatever happened.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ordo-${prefix}-`));
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}
