/**
 * The benchmarks' command lines (bench/common.ts `benchCommand`): bad
 * options end the run before any cluster starts, with a message that names
 * them; `--help` lists the options.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";

const bench_dir = path.resolve(__dirname, "../../bench");

function run(script: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [path.join(bench_dir, script), ...args], {
    encoding: "utf8",
    timeout: 30_000,
  });
  return { status: r.status, output: r.stdout + r.stderr };
}

describe("bench command lines", () => {
  it("e2e refuses an unknown target, a target named twice and too few clients, up front", () => {
    const cases: [string[], RegExp][] = [
      [["--targets", "vanilla,ordo:1"], /unknown target "ordo:1"/],
      [["--targets", "ordo:1:1,ordo:1:1"], /ordo:1:1 is named twice/],
      [["--clients", "1", "--targets", "ordo:2:4"], /ordo:2:4 needs --clients 2 or more/],
      [["--scale", "0"], /--scale <n>.*must be a positive integer/],
      [["--cpu", "--seconds", "2"], /--cpu needs --seconds 4 or more/],
      [["--scale"], /argument missing/],
      [["--bogus"], /unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const { status, output } = run("e2e.js", args);
      assert.equal(status, 1, `${args.join(" ")}: ${output}`);
      assert.match(output, message);
    }
  });

  it("lists the options with --help", () => {
    const { status, output } = run("e2e.js", ["--help"]);
    assert.equal(status, 0, output);
    for (const option of ["--scale", "--clients", "--seconds", "--targets", "--cpu", "--keep"]) {
      assert.ok(output.includes(option), `${option} missing from:\n${output}`);
    }
  });

  it("the hot-path benches refuse bad numbers", () => {
    for (const [script, args] of [
      ["journal-disk.js", ["--clients", "1,x"]],
      ["native.js", ["--seconds", "-1"]],
      ["crossbar.js", ["0"]],
    ] as const) {
      const { status, output } = run(script, [...args]);
      assert.equal(status, 1, `${script} ${args.join(" ")}: ${output}`);
      assert.match(output, /must be a positive (integer|number)/);
    }
  });
});
