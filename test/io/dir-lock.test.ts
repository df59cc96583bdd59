/**
 * Tests for src/io/dir-lock.ts on real files and real processes: one holder
 * per directory, a live holder refused by name, stale locks (a dead process,
 * this pid without the lock, garbage) taken over, release.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { DirLock, DirLockError, lock_file_name } from "../../src/io/dir-lock";
import { statField } from "../../src/io/proc-stat";
import { makeTempDir, removeTempDir } from "../support/temp-dir";

describe("data directory lock", () => {
  let dir: string;
  const lockPath = (): string => path.join(dir, lock_file_name);

  beforeEach(() => {
    dir = makeTempDir("dir-lock");
  });

  afterEach(() => {
    removeTempDir(dir);
  });

  const holderLine = (): string => fs.readFileSync(lockPath(), "utf8").split("\n")[0]!;

  it("has one holder at a time and names it in the file", () => {
    const lock = DirLock.acquire(dir);
    const [pid, startTime] = fs.readFileSync(lockPath(), "utf8").split("\n");
    assert.equal(pid, String(process.pid));
    assert.match(startTime!, /^\d+$/, "the start time from /proc");
    assert.throws(
      () => DirLock.acquire(path.join(dir, ".")),
      (error: unknown) => error instanceof DirLockError && error.pid === process.pid,
    );
    assert.deepEqual(
      fs.readdirSync(dir),
      [lock_file_name],
      "no scratch file left behind by the refused attempt",
    );
    lock.release();
    lock.release();
    assert.equal(fs.existsSync(lockPath()), false);
    DirLock.acquire(dir).release();
  });

  it("refuses while another live process holds it", async () => {
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
    try {
      await new Promise((resolve) => other.once("spawn", resolve));
      fs.writeFileSync(lockPath(), `${other.pid}\n`);
      assert.throws(
        () => DirLock.acquire(dir),
        (error: unknown) =>
          error instanceof DirLockError &&
          error.code === "data_dir_in_use" &&
          error.pid === other.pid &&
          error.message.includes(`in use by process ${other.pid}`),
      );
      assert.equal(fs.readFileSync(lockPath(), "utf8"), `${other.pid}\n`, "left as it was");
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("takes over a lock whose process is gone, or that names this pid, or holds no pid", () => {
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    for (const stale of [`${dead}\n`, `${process.pid}\n`, "not a pid\n", ""]) {
      fs.writeFileSync(lockPath(), stale);
      const lock = DirLock.acquire(dir);
      assert.equal(holderLine(), String(process.pid));
      lock.release();
    }
  });

  it("takes over a lock whose pid another process has now", async () => {
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
    try {
      await new Promise((resolve) => other.once("spawn", resolve));
      // The pid of a live process, but another start time: the holder crashed
      // and its pid went to someone else.
      fs.writeFileSync(lockPath(), `${other.pid}\n1\n`);
      const lock = DirLock.acquire(dir);
      assert.equal(holderLine(), String(process.pid));
      lock.release();
      // With its real start time it is that process's lock.
      const startTime = statField(fs.readFileSync(`/proc/${other.pid}/stat`, "utf8"), 22);
      fs.writeFileSync(lockPath(), `${other.pid}\n${startTime}\n`);
      assert.throws(() => DirLock.acquire(dir), DirLockError);
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("leaves a lock another process took in the meantime", () => {
    const lock = DirLock.acquire(dir);
    fs.writeFileSync(lockPath(), "1\n");
    lock.release();
    assert.equal(fs.readFileSync(lockPath(), "utf8"), "1\n");
  });
});
