/**
 * The simulated disk's crash model for renames, and the QP progress file
 * (src/sidecar/qp-progress-file.ts) on it: a crash at any moment of a save
 * leaves the old record or the new one, whole.
 */
import assert from "node:assert/strict";
import { QpProgressFile } from "../../src/sidecar/qp-progress-file";
import { SimDisk } from "../../src/sim/disk";
import { Prng } from "../../src/sim/prng";
import { World } from "../../src/sim/world";

const fsync = { minUs: 300, meanExtraUs: 200, outlierP: 0, outlierUs: 0 };
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

async function content(disk: SimDisk, path: string): Promise<string> {
  const file = await disk.open(path, "read");
  return text(await file.read(0, await file.size()));
}

async function durableFile(world: World, disk: SimDisk, path: string, data: string): Promise<void> {
  const file = await disk.open(path, "create");
  await file.write(0, bytes(data));
  const synced = file.sync();
  await world.run(world.now + 10_000);
  await synced;
  await disk.syncDir("/d");
}

describe("sim disk renames", () => {
  it("a rename is seen at once; a crash before the directory sync keeps the old name or the new, whole", async () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      const world = new World();
      const disk = new SimDisk(world.addHost("h"), new Prng(seed), { fsync });
      await disk.mkdir("/d");
      await durableFile(world, disk, "/d/a", "old");
      await durableFile(world, disk, "/d/a.tmp", "new");
      await disk.rename("/d/a.tmp", "/d/a");
      assert.deepEqual(await disk.list("/d"), ["a"]);
      assert.equal(await content(disk, "/d/a"), "new");
      disk.crash();
      const names = await disk.list("/d");
      const a = await content(disk, "/d/a");
      if (a === "old") assert.deepEqual(names, ["a", "a.tmp"], `seed ${seed}`);
      else assert.deepEqual([a, names], ["new", ["a"]], `seed ${seed}`);
      outcomes.add(a);
    }
    assert.deepEqual([...outcomes].sort(), ["new", "old"]);
  });

  it("a rename the directory sync covered survives every crash", async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const world = new World();
      const disk = new SimDisk(world.addHost("h"), new Prng(seed), { fsync });
      await disk.mkdir("/d");
      await durableFile(world, disk, "/d/a.tmp", "new");
      await disk.rename("/d/a.tmp", "/d/a");
      await disk.syncDir("/d");
      disk.crash();
      assert.deepEqual(await disk.list("/d"), ["a"]);
      assert.equal(await content(disk, "/d/a"), "new");
    }
  });

  it("the QP progress file holds the old record or the new one after a crash anywhere in a save", async () => {
    const before = new Map([[1n, 100]]);
    const after = new Map([
      [1n, 200],
      [2n, 5],
    ]);
    const seen = { before: 0, after: 0 };
    for (let seed = 1; seed <= 60; seed++) {
      const world = new World();
      const prng = new Prng(seed, 1);
      const host = world.addHost("h");
      const disk = new SimDisk(host, new Prng(seed), { fsync });
      await disk.mkdir("/d");
      const file = new QpProgressFile(disk, "/d");
      assert.deepEqual(await file.load(), new Map());
      const first = file.save(before);
      await world.run(world.now + 10_000);
      await first;
      void file.save(after);
      await world.run(world.now + prng.int(1_500)); // the save's fsync takes 300 µs or more
      world.crash(host); // the save in flight never goes on
      disk.crash();
      world.restart(host);
      const loaded = await new QpProgressFile(disk, "/d").load();
      if (loaded.size === 1) {
        assert.deepEqual(loaded, before, `seed ${seed}`);
        seen.before += 1;
      } else {
        assert.deepEqual(loaded, after, `seed ${seed}`);
        seen.after += 1;
      }
      // The next save goes through whatever the crash left.
      const again = new QpProgressFile(disk, "/d").save(after);
      await world.run(world.now + 10_000);
      await again;
      assert.deepEqual(await file.load(), after);
    }
    assert.ok(seen.before > 0 && seen.after > 0, JSON.stringify(seen));
  });
});
