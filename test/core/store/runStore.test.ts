import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RunManifest } from "../../../src/shared/runTypes";
import { MANIFEST_FORMAT_VERSION, RunStore } from "../../../src/core/store/runStore";
import { tempDir } from "../../helpers/paths";

const NOON = new Date(2025, 0, 2, 12, 0, 0);

function onDisk(store: RunStore): RunManifest {
  return JSON.parse(readFileSync(join(store.dir, "manifest.json"), "utf8")) as RunManifest;
}

test("setStage stamps startedAt and finishedAt, and a reopened store reads them back", async (t) => {
  const root = tempDir(t);
  const store = await RunStore.create(root, { runId: "exp1", mode: "dpo-st" });
  assert.equal(store.dir, join(root, "runs", "exp1"));
  assert.deepEqual(store.stage(1, "pairs"), { state: "pending" });

  const running = await store.setStage(1, "pairs", { state: "running" });
  assert.ok(running.startedAt !== undefined && running.finishedAt === undefined);
  // Staying in "running" keeps the start time.
  const progress = await store.setStage(1, "pairs", { counts: { pairs: 10 } });
  assert.equal(progress.startedAt, running.startedAt);

  const done = await store.setStage(1, "pairs", { state: "done", counts: { pairs: 42 } });
  assert.equal(done.startedAt, running.startedAt);
  assert.ok(done.finishedAt !== undefined && done.finishedAt >= done.startedAt!);
  assert.deepEqual(done.counts, { pairs: 42 });
  const failed = await store.setStage(0, "warmup", { state: "failed", error: "out of memory" });
  assert.ok(failed.finishedAt !== undefined);

  const reopened = await RunStore.open(root, "exp1");
  assert.deepEqual(reopened.stage(1, "pairs"), done);
  assert.deepEqual(reopened.stage(0, "warmup"), failed);
  assert.deepEqual(reopened.manifest, store.manifest);
  assert.deepEqual(onDisk(store).rounds.map((r) => r.round), [0, 1]);
  assert.equal(onDisk(store).formatVersion, MANIFEST_FORMAT_VERSION);

  // The in-memory copy cannot be changed behind the store's back.
  store.manifest.rounds.length = 0;
  assert.equal(store.manifest.rounds.length, 2);
});

test("a stage left running by a crash becomes pending with error interrupted, and resume restarts it", async (t) => {
  const root = tempDir(t);
  const before = await RunStore.create(root, { runId: "crash", mode: "st" });
  await before.setStage(1, "sample-sft", { state: "done" });
  await before.setStage(1, "pseudo-labels", { state: "running" });
  // The process dies here; a new one opens the run.
  const after = await RunStore.open(root, "crash");
  assert.equal(after.stage(1, "pseudo-labels").state, "running");
  assert.deepEqual(await after.markInterrupted(), [{ round: 1, stage: "pseudo-labels" }]);
  assert.equal(after.stage(1, "pseudo-labels").state, "pending");
  assert.equal(after.stage(1, "pseudo-labels").error, "interrupted");
  assert.equal(after.stage(1, "sample-sft").state, "done");
  assert.deepEqual((await RunStore.open(root, "crash")).stage(1, "pseudo-labels"), after.stage(1, "pseudo-labels"));
  assert.deepEqual(await after.markInterrupted(), []);

  const order = ["sample-sft", "pseudo-labels", "sft", "eval"] as const;
  assert.equal(after.firstUnfinished(order, 1), "pseudo-labels");
  const restarted = await after.setStage(1, "pseudo-labels", { state: "running" });
  assert.equal(restarted.error, undefined);
  assert.ok(!("error" in onDisk(after).rounds[0]!.stages["pseudo-labels"]!));
  for (const stage of order) await after.setStage(1, stage, { state: "done" });
  assert.equal(after.firstUnfinished(order, 1), null);
  assert.equal(after.firstUnfinished(order, 2), "sample-sft");
});

test("manifest.json is replaced whole: no temporary file is left, and quick successive changes all land", async (t) => {
  const root = tempDir(t);
  const store = await RunStore.create(root, { runId: "atomic", mode: "dpo-st" });
  await store.setStage(1, "sample-dpo", { state: "running" });
  assert.deepEqual(readdirSync(store.dir), ["manifest.json"]);
  // Not awaited one by one: the writes must still reach the disk in order.
  await Promise.all([
    store.setStage(1, "sample-dpo", { state: "done" }),
    store.setStage(1, "pairs", { state: "running" }),
    store.setStage(1, "pairs", { state: "done", counts: { pairs: 3 } }),
    store.setStage(2, "sample-dpo", { state: "running" }),
  ]);
  assert.deepEqual(readdirSync(store.dir), ["manifest.json"]);
  assert.deepEqual(onDisk(store), store.manifest);
  assert.ok(readFileSync(join(store.dir, "manifest.json"), "utf8").endsWith("}\n"));
});

test("open refuses a newer format version or a broken manifest, naming the file", async (t) => {
  const root = tempDir(t);
  const store = await RunStore.create(root, { runId: "future", mode: "dpo-st" });
  const file = join(store.dir, "manifest.json");
  writeFileSync(file, JSON.stringify({ ...store.manifest, formatVersion: 99, rounds: "whatever" }));
  await assert.rejects(RunStore.open(root, "future"), (e: Error) => {
    assert.ok(e.message.startsWith(`${file}: format version 99 is newer`), e.message);
    return true;
  });

  const broken = (manifest: unknown, expected: string): Promise<void> => {
    writeFileSync(file, typeof manifest === "string" ? manifest : JSON.stringify(manifest));
    return assert.rejects(RunStore.open(root, "future"), (e: Error) => e.message.startsWith(`${file}: ${expected}`));
  };
  const good = { ...store.manifest, rounds: [{ round: 1, stages: { dpo: { state: "done" } } }] };
  await broken("{ not json", "invalid JSON");
  const withStages = (stages: unknown): unknown => ({ ...good, rounds: [{ round: 1, stages }] });
  await broken(withStages({ dpo: { state: "finished" } }), "rounds[0].stages.dpo.state must be");
  await broken(withStages({ train: { state: "done" } }), 'rounds[0].stages has an unknown stage "train"');
  const badCounts = withStages({ dpo: { state: "done", counts: { steps: "ten" } } });
  await broken(badCounts, "rounds[0].stages.dpo.counts.steps must be a number");
  await broken({ ...good, mode: "rl" }, "mode must be one of");
  await broken({ ...good, runId: "other" }, 'runId is "other" but the run\'s folder is "future"');
  await broken({ ...good, rounds: [{ round: 1, stages: {} }, { round: 1, stages: {} }] }, "round 1 appears twice");
  writeFileSync(file, JSON.stringify(good));
  assert.equal((await RunStore.open(root, "future")).stage(1, "dpo").state, "done");

  const missing = join(root, "runs", "nope", "manifest.json");
  await assert.rejects(RunStore.open(root, "nope"), (e: Error) => e.message.startsWith(`${missing}: not found`));
  await assert.rejects(RunStore.open(root, "../escape"), /invalid run id/);
});

test("create picks today's date plus the first free letter, and refuses an existing id", async (t) => {
  const root = tempDir(t);
  const a = await RunStore.create(root, { mode: "dpo-st", now: NOON });
  const b = await RunStore.create(root, { mode: "st", now: NOON });
  assert.equal(a.runId, "2025-01-02-a");
  assert.equal(b.runId, "2025-01-02-b");
  assert.equal(b.manifest.mode, "st");
  assert.equal(b.manifest.createdAt, NOON.toISOString());
  await assert.rejects(RunStore.create(root, { runId: "2025-01-02-a", mode: "st" }), /already exists/);
  // The refused create did not touch the existing run.
  assert.equal((await RunStore.open(root, "2025-01-02-a")).manifest.mode, "dpo-st");
  assert.equal((await RunStore.create(root, { mode: "st" })).runId.length, "2025-01-02-a".length);
});

test("list returns run ids in order (z before aa), folders only", async (t) => {
  const root = tempDir(t);
  assert.deepEqual(RunStore.list(root), []);
  for (const id of ["2025-01-03-a", "2025-01-02-aa", "2025-01-02-z", "2025-01-02-b", "baseline"]) {
    mkdirSync(join(root, "runs", id), { recursive: true });
    // A folder with something in it is a run (an empty one is what an interrupted creation leaves: no run).
    writeFileSync(join(root, "runs", id, "manifest.json"), "{}");
  }
  writeFileSync(join(root, "runs", "notes.txt"), "not a run");
  assert.deepEqual(RunStore.list(root), ["2025-01-02-b", "2025-01-02-z", "2025-01-02-aa", "2025-01-03-a", "baseline"]);
});

test("round and checkpoint paths follow the layout", async (t) => {
  const root = tempDir(t);
  const store = await RunStore.create(root, { runId: "paths", mode: "dpo-st" });
  const run = join(root, "runs", "paths");
  assert.equal(store.roundDir(0), join(run, "round-0"));
  assert.equal(store.path(1, "pairs.jsonl"), join(run, "round-1", "pairs.jsonl"));
  assert.equal(store.checkpointDir(0, "warmup"), join(run, "round-0", "checkpoint"));
  assert.equal(store.checkpointDir(2, "dpo"), join(run, "round-2", "dpo", "checkpoint"));
  assert.equal(store.checkpointDir(2, "sft"), join(run, "round-2", "sft", "checkpoint"));
  assert.throws(() => store.checkpointDir(0, "dpo"), /round 0 has no "dpo" checkpoint/);
  assert.throws(() => store.checkpointDir(1, "warmup"), /round 1 has no "warmup" checkpoint/);
  assert.throws(() => store.roundDir(-1), RangeError);
  assert.throws(() => store.roundDir(1.5), RangeError);
});
