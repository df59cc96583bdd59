/**
 * Planted bugs (docs/checker.md, "Planted bugs"): each deliberate bug of the
 * sidecar or the extension, switched on for one real cluster, must make a
 * short fault campaign fail — the checker, the durability check or the
 * real-time order finds what the bug broke. A campaign with every bug off
 * comes out valid (test/check/campaign.test.ts); this file shows the checks
 * are able to fail.
 */
import { strict as assert } from "node:assert";
import fs from "node:fs";
import { ClusterLayout } from "../../src/cluster/layout";
import {
  startSidecar as startSidecarProcess,
  stopSidecar,
} from "../../src/cluster/sidecar-process";
import { MessageType, Verdict } from "../../src/protocol";
import { commitRequest, ins } from "../support/commits";
import { SidecarClient } from "../support/sidecar-client";
import {
  formatCampaignReport,
  plantedBugSettings,
  runCampaign,
  type CampaignOptions,
  type CampaignResult,
} from "../../src/check/campaign";
import { parsePlantedBugs } from "../../src/sidecar/start";
import { makeTempDir, removeTempDir } from "../support/temp-dir";

const verbose = process.env.ORDO_TEST_VERBOSE === "1";

async function campaign(options: Omit<CampaignOptions, "dir" | "log">): Promise<CampaignResult> {
  const dir = makeTempDir("ordo-planted-");
  try {
    const result = await runCampaign({
      ...options,
      dir,
      log: (line) => {
        if (verbose) process.stderr.write(`  ${line}\n`);
      },
    });
    if (verbose) process.stderr.write(formatCampaignReport(result));
    return result;
  } finally {
    removeTempDir(dir);
  }
}

/** Anomaly classes the checker reported, over every group. */
function anomalyClasses(result: CampaignResult): string[] {
  const classes = new Set<string>();
  for (const group of result.groups) {
    for (const a of group.check?.anomalies ?? []) if (a.forbidden) classes.add(a.class);
  }
  return [...classes].sort();
}

function lostAppends(result: CampaignResult): number {
  return result.groups.reduce((n, g) => n + (g.durability?.lost.length ?? 0), 0);
}

/** The campaign is invalid for a reason a bug explains: an SI anomaly, a lost append, a stuck QP. */
function assertCaught(result: CampaignResult, expect: "any" | "realtime" = "any"): void {
  const classes = anomalyClasses(result);
  const lost = lostAppends(result);
  if (verbose) {
    process.stderr.write(
      `  caught: ${JSON.stringify({ classes, lost, notReady: result.notReady })}\n`,
    );
  }
  assert.equal(result.valid, false, "the campaign must notice the planted bug");
  if (expect === "realtime") {
    assert.ok(
      classes.some((c) => c.endsWith("-realtime")),
      `a real-time anomaly, got ${classes.join(", ")}`,
    );
  } else {
    // Either the checker sees what the bug did, or the applier of a QP that received the
    // conflicting commits deadlocked on them (docs/checker.md, "Planted bugs").
    assert.ok(
      classes.length > 0 || lost > 0 || result.notReady.length > 0,
      "an SI anomaly, a lost acknowledged append or a QP stuck for good",
    );
  }
}

/** Starts the sidecar process of `dir` (with `env`) and returns how many journal entries it recovered. */
async function startSidecarIn(dir: string, env: Record<string, string>): Promise<number> {
  const layout = new ClusterLayout(dir);
  const ready = await startSidecarProcess({
    dataDir: layout.sidecarData,
    socket: layout.sidecarSocket,
    logFile: layout.sidecarLog,
    pidFile: layout.sidecarPidFile,
    env,
  });
  return (ready.journal as { recovered: number }).recovered;
}

/**
 * Sends `count` commits at once to a fresh sidecar process, SIGKILLs it as
 * soon as every reply is in, restarts it without bugs, and returns how many
 * commits were acknowledged and how many the journal holds.
 */
async function ackThenKill(env: Record<string, string>, count: number) {
  const dir = makeTempDir("ordo-planted-journal-");
  const layout = new ClusterLayout(dir);
  fs.mkdirSync(layout.runDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(layout.logDir, { recursive: true });
  try {
    await startSidecarIn(dir, env);
    const client = await SidecarClient.connect(layout.sidecarSocket);
    const tauStart = Date.now() * 1000;
    const replies = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        client.commit(commitRequest(tauStart, [ins(`journal-bug-${i}`)])),
      ),
    );
    await stopSidecar(layout.sidecarPidFile, "SIGKILL");
    client.close();
    const acknowledged = replies.filter(
      (r) => r.type === MessageType.CommitReply && r.verdict === Verdict.Committed,
    ).length;
    const recovered = await startSidecarIn(dir, {});
    await stopSidecar(layout.sidecarPidFile);
    return { acknowledged, recovered };
  } finally {
    removeTempDir(dir);
  }
}

describe("planted bugs: switches", () => {
  it("reads ORDO_PLANTED_BUGS strictly: empty is none, an unknown name is an error", () => {
    assert.deepEqual(parsePlantedBugs(undefined), []);
    assert.deepEqual(parsePlantedBugs(""), []);
    assert.deepEqual(parsePlantedBugs("adjudicator-wrong-timestamp, journal-acks-before-fsync"), [
      "adjudicator-wrong-timestamp",
      "journal-acks-before-fsync",
    ]);
    assert.throws(() => parsePlantedBugs("adjudicator-ignores-everything"), /unknown bug/);
  });

  it("sends sidecar bugs to its environment and QP bugs to ordo.planted_bugs", () => {
    assert.deepEqual(plantedBugSettings([]), { env: {}, pgSettings: {} });
    assert.deepEqual(plantedBugSettings(["skip-visible-wait", "adjudicator-ignores-in-flight"]), {
      env: { ORDO_PLANTED_BUGS: "adjudicator-ignores-in-flight" },
      pgSettings: { "ordo.planted_bugs": "'skip-visible-wait'" },
    });
    assert.throws(() => plantedBugSettings(["no-such-bug"]), /unknown planted bug/);
  });
});

describe("planted bugs: journal-acks-before-fsync", function () {
  this.timeout(60_000);
  const commits = 50;

  it("without the bug, a SIGKILL right after the replies loses no acknowledged commit", async () => {
    const { acknowledged, recovered } = await ackThenKill({}, commits);
    assert.equal(acknowledged, commits);
    assert.equal(recovered, acknowledged);
  });

  it("with the bug, the same SIGKILL loses acknowledged commits", async () => {
    const { acknowledged, recovered } = await ackThenKill(
      { ORDO_PLANTED_BUGS: "journal-acks-before-fsync" },
      commits,
    );
    assert.equal(acknowledged, commits);
    assert.ok(recovered < acknowledged, `recovered ${recovered} of ${acknowledged} acknowledged`);
  });
});

describe("planted bugs: a short campaign catches each one", function () {
  this.timeout(120_000);

  /** Two QPs, eight clients appending to two hot keys for 6 s, with one planted bug. */
  const hotKeys = (bug: string) =>
    ({
      qps: 2,
      clients: 8,
      keysActive: 2,
      durationMs: 6000,
      workload: "append",
      opTimeoutMs: 3000,
      readyTimeoutMs: 5000,
      plantedBugs: [bug],
    }) as const;

  it("adjudicator-ignores-in-flight: lost appends, an SI anomaly or a QP stuck for good", async () => {
    const result = await campaign(hotKeys("adjudicator-ignores-in-flight"));
    assertCaught(result);
  });

  it("adjudicator-wrong-timestamp: lost appends, an SI anomaly or a QP stuck for good", async () => {
    const result = await campaign(hotKeys("adjudicator-wrong-timestamp"));
    assertCaught(result);
  });

  it("journal-acks-before-fsync: a whole-host crash loses acknowledged appends", async () => {
    // Each whole-host crash that lands while a group waits out the bug's delay loses it;
    // a loaded machine restarts slowly, so the run is long enough for several crashes.
    const result = await campaign({
      qps: 2,
      clients: 8,
      durationMs: 20000,
      workload: "append",
      faults: "kill-host",
      faultIntervalMs: 2000,
      opTimeoutMs: 3000,
      readyTimeoutMs: 15000,
      plantedBugs: ["journal-acks-before-fsync"],
    });
    assert.ok(result.faults.length > 0, "a whole-host crash was injected");
    const acknowledged = result.groups.reduce((n, g) => n + (g.durability?.acknowledged ?? 0), 0);
    assert.ok(
      lostAppends(result) > 0,
      `acknowledged appends were lost (${result.faults.length} crashes, ${acknowledged} acknowledged)`,
    );
  });

  it("skip-visible-wait: strong SI (real-time order) is broken across QPs", async () => {
    const result = await campaign({
      qps: 2,
      clients: 8,
      keysActive: 4,
      durationMs: 6000,
      workload: "append",
      realtime: true,
      opTimeoutMs: 3000,
      readyTimeoutMs: 5000,
      plantedBugs: ["skip-visible-wait"],
    });
    assertCaught(result, "realtime");
  });
});
