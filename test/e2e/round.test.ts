import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runRound } from "../../src/core/selftrain/session";
import { selftrainDir, exportRound, workspaceStatus } from "../../src/core/selftrain/workspace";
import { formatStatus } from "../../src/cli/runCommands";
import { roundStages } from "../../src/core/selftrain/stages";
import { RunStore } from "../../src/core/store/runStore";
import { ReviewLog } from "../../src/core/store/reviewLog";
import { readJsonl } from "../../src/core/store/jsonl";
import { contentHash } from "../../src/core/store/hash";
import { isCorrect } from "../../src/core/data/answerCheck";
import { readDataset } from "../../src/core/data/jsonlReader";
import { jaccard, tokenSet } from "../../src/core/selftrain/similarity";
import type { SampleRecord, PairRecord, PseudoLabelRecord } from "../../src/shared/runTypes";
import { tinyWorkspace, recorder } from "../helpers/workspace";
import { tempDir } from "../helpers/paths";

const read = async <T>(store: RunStore, round: number, file: string): Promise<T[]> => (await readJsonl<T>(store.path(round, file))).records;

test("warm-up and one DPO-ST round: every artefact, and every count follows the method's rules; human decisions take effect and survive re-runs", async (t) => {
  const ws = await tinyWorkspace(tempDir(t));
  const events = recorder();
  const { runId, round } = await runRound({ workspace: ws, round: 1, events, shouldStop: () => false });
  assert.equal(round, 1);
  const store = await RunStore.open(selftrainDir(ws), runId);
  for (const n of [0, 1]) for (const s of roundStages(n, "dpo-st")) assert.equal(store.stage(n, s).state, "done", `${n}:${s}`);
  for (const dir of [join(store.dir, "base"), store.checkpointDir(0, "warmup"), store.checkpointDir(1, "dpo"), store.checkpointDir(1, "sft")]) {
    for (const f of ["config.json", "model.safetensors", "tokenizer.json"]) assert.ok(existsSync(join(dir, f)), `${dir}/${f}`);
  }
  // Beside every trained checkpoint, its inference model as ONNX, which loads in a plain ORT session (its
  // outputs are checked against the engines in test/core/engine/ort).
  const ort = await import("onnxruntime-node");
  const onnx = await ort.InferenceSession.create(readFileSync(join(store.checkpointDir(1, "sft"), "model.onnx")));
  assert.ok(onnx.inputNames.includes("input_ids") && onnx.outputNames.includes("logits"), `${onnx.inputNames} → ${onnx.outputNames}`);
  for (const dir of [store.checkpointDir(0, "warmup"), store.checkpointDir(1, "dpo")]) assert.ok(existsSync(join(dir, "model.onnx")), dir);
  // The engine that trained is recorded with every metric; on this machine "auto" picks ONNX Runtime.
  const roundRecord = (await read<Record<string, unknown>>(store, 1, "metrics.jsonl")).find((m) => m["kind"] === "round")!;
  assert.equal(roundRecord["engine"], "onnxruntime");
  assert.ok(events.logs.some((l) => /auto: ONNX Runtime/.test(l)), events.logs.join("\n"));
  // The run's whole config beside every trained checkpoint and every metrics file.
  for (const dir of [store.checkpointDir(0, "warmup"), store.checkpointDir(1, "dpo"), store.checkpointDir(1, "sft"), store.roundDir(0), store.roundDir(1)]) {
    assert.equal(JSON.parse(readFileSync(join(dir, "selftrain-config.json"), "utf8")).sampling.dpoSamples, 4, dir);
  }
  const train = (await readDataset(join(ws, "data/train.jsonl"))).examples;
  const questions = train.length - 6; // dev taken from train
  const gold = new Map(train.map((e) => [e.id, e]));

  // Samples: 4 per training question, each checked against the gold answer.
  const samples = await read<SampleRecord>(store, 1, "samples-dpo.jsonl");
  assert.equal(samples.length, questions * 4);
  for (const s of samples) assert.equal(s.correct, isCorrect(s.rationale, gold.get(s.questionId)!.answer), s.rationale);
  assert.equal(new Set(samples.map((s) => s.questionId)).size, questions);

  // Pairs: at most 3 per question, chosen correct (gold counts), rejected wrong, no near-duplicate negatives.
  const pairs = await read<PairRecord>(store, 1, "pairs.jsonl");
  assert.ok(pairs.length > 0);
  const byQ = new Map<string, PairRecord[]>();
  for (const p of pairs) byQ.set(p.questionId, [...(byQ.get(p.questionId) ?? []), p]);
  const byHash = new Map(samples.map((s) => [s.hash, s]));
  for (const [q, ps] of byQ) {
    assert.ok(ps.length <= 3, `${q}: ${ps.length} pairs`);
    const g = gold.get(q)!;
    for (const p of ps) {
      assert.ok(p.chosenHash === contentHash(g.question, g.rationale) || byHash.get(p.chosenHash)?.correct, "chosen is a positive");
      assert.equal(byHash.get(p.rejectedHash)?.correct, false, "rejected is a negative");
    }
    const rejected = [...new Set(ps.map((p) => p.rejected))];
    for (let i = 0; i < rejected.length; i++) for (let j = i + 1; j < rejected.length; j++) assert.ok(jaccard(tokenSet(rejected[i]!), tokenSet(rejected[j]!)) <= 0.7, "duplicate negatives");
  }
  for (const q of new Set(samples.map((s) => s.questionId))) {
    const hasNegative = samples.some((s) => s.questionId === q && !s.correct);
    assert.equal(byQ.has(q), hasNegative, `${q}: pairs only where there is a negative`);
  }
  assert.ok(pairs.some((p) => p.chosen === gold.get(p.questionId)!.rationale), "gold used as a positive");

  // Pseudo-labels respect the cap; metrics hold every step and a round summary.
  const labelsStage = store.stage(1, "pseudo-labels").counts!;
  const labels = await read<PseudoLabelRecord>(store, 1, "pseudo-labels.jsonl");
  const perQ = new Map<string, number>();
  for (const l of labels) perQ.set(l.questionId, (perQ.get(l.questionId) ?? 0) + 1);
  for (const n of perQ.values()) assert.ok(n <= labelsStage["cap"]!);
  const metrics = await read<Record<string, unknown>>(store, 1, "metrics.jsonl");
  assert.equal(metrics.filter((m) => m["kind"] === "train" && m["stage"] === "dpo").length, 4);
  assert.equal(metrics.filter((m) => m["kind"] === "train" && m["stage"] === "sft").length, 12);
  const summary = metrics.find((m) => m["kind"] === "round")!;
  assert.equal(summary["runId"], runId, "metric records name their run");
  assert.equal(summary["v"], 2);
  for (const k of ["devAccuracy", "testAccuracy", "testPassAtK", "pairs", "pseudoLabels", "positives", "negatives", "tokensPerSecond", "wallMs", "device"]) assert.ok(k in summary, k);
  assert.equal(summary["pairs"], pairs.length);
  assert.equal((await read(store, 1, "eval.jsonl")).length, 12);
  assert.ok(metrics.some((m) => m["kind"] === "train" && "rewards/accuracies" in m && "rewards/margins" in m && "logps/chosen" in m));

  // The status table and the TRL export a user would run next.
  const status = formatStatus(await workspaceStatus(ws));
  assert.match(status, new RegExp(`run ${runId} \\(dpo-st`));
  assert.match(status, /round 1: ✓ sample-dpo {2}✓ pairs {2}✓ dpo {2}✓ sample-sft {2}✓ pseudo-labels {2}✓ sft {2}✓ eval {2}test \d+\.\d%/);
  const exported = await exportRound(ws, runId, 1, join(ws, "export"));
  assert.equal(exported.pairs, pairs.length);
  const trl = (await readJsonl<Record<string, string>>(exported.files[0]!)).records;
  assert.deepEqual(Object.keys(trl[0]!).sort(), ["chosen", "prompt", "rejected", "source"]);
  assert.ok(trl[0]!["prompt"]!.includes(pairs[0]!.question) && trl[0]!["chosen"] === pairs[0]!.chosen);

  // ---- Human decisions, on the DPO side: then round 1 runs again from "pairs".
  const reviews = new ReviewLog(selftrainDir(ws));
  const q = [...byQ.keys()][0]!;
  const g = gold.get(q)!;
  const goldHash = contentHash(g.question, g.rationale);
  // Each decision on a question of its own, so that each one alone explains what changes.
  const dropped = byQ.get(q)![0]!;
  reviews.append({ kind: "exclude-pair", chosenHash: dropped.chosenHash, rejectedHash: dropped.rejectedHash });
  const q3 = [...byQ.keys()][2]!;
  const negatives = samples.filter((s) => s.questionId === q3 && !s.correct);
  const markedRight = negatives[0]!;
  reviews.append({ kind: "mark", verdict: "correct", hash: markedRight.hash });
  const excluded = negatives.find((s) => s.hash !== markedRight.hash);
  if (excluded) reviews.append({ kind: "exclude-sample", hash: excluded.hash });
  const other = [...byQ.keys()][1]!;
  const forcedRejected = samples.find((s) => s.questionId === other && !s.correct)!;
  const og = gold.get(other)!;
  reviews.append({ kind: "force-pair", questionId: other, chosenHash: contentHash(og.question, og.rationale), rejectedHash: forcedRejected.hash });
  const handWritten = `${g.rationale.split("\n")[0]} A person wrote this.\n#### ${g.answer}`;
  reviews.append({ kind: "add-rationale", questionId: q, question: g.question, rationale: handWritten, hash: contentHash(g.question, handWritten) });

  const checkPairs = async (): Promise<PairRecord[]> => {
    const again = await read<PairRecord>(await RunStore.open(selftrainDir(ws), runId), 1, "pairs.jsonl");
    assert.ok(!again.some((p) => p.chosenHash === dropped.chosenHash && p.rejectedHash === dropped.rejectedHash), "excluded pair is back");
    assert.ok(!again.some((p) => p.rejectedHash === markedRight.hash), "a sample marked correct was rejected");
    if (excluded) assert.ok(!again.some((p) => p.chosenHash === excluded.hash || p.rejectedHash === excluded.hash), "excluded sample used");
    const forced = again.filter((p) => p.source === "human");
    assert.deepEqual(forced.map((p) => [p.questionId, p.rejectedHash]), [[other, forcedRejected.hash]]);
    assert.ok(again.filter((p) => p.source === "automatic" && p.questionId === q).length <= 3);
    void goldHash;
    return again;
  };
  await runRound({ workspace: ws, runId, round: 1, restartFrom: "pairs", events: recorder(), shouldStop: () => false });
  await checkPairs();
  const labels2 = await read<PseudoLabelRecord>(await RunStore.open(selftrainDir(ws), runId), 1, "pseudo-labels.jsonl");
  assert.deepEqual(labels2.filter((l) => l.source === "human").map((l) => l.rationale), [handWritten]);

  // ---- On the SFT side: mark fresh samples right, then pseudo-labels again; the cap still holds.
  const store2 = await RunStore.open(selftrainDir(ws), runId);
  const sft = await read<SampleRecord>(store2, 1, "samples-sft.jsonl");
  const marked = sft.filter((s) => !s.correct).slice(0, 9);
  for (const s of marked) new ReviewLog(selftrainDir(ws)).append({ kind: "mark", verdict: "correct", hash: s.hash });
  await runRound({ workspace: ws, runId, round: 1, restartFrom: "pseudo-labels", events: recorder(), shouldStop: () => false });
  const store3 = await RunStore.open(selftrainDir(ws), runId);
  const labels3 = await read<PseudoLabelRecord>(store3, 1, "pseudo-labels.jsonl");
  const cap = store3.stage(1, "pseudo-labels").counts!["cap"]!;
  const per = new Map<string, number>();
  for (const l of labels3.filter((x) => x.source === "automatic")) per.set(l.questionId, (per.get(l.questionId) ?? 0) + 1);
  assert.ok(cap >= 1 && [...per.values()].every((n) => n <= cap), `cap ${cap}: ${[...per.values()]}`);
  assert.ok(labels3.filter((l) => l.source === "automatic").every((l) => marked.some((m) => m.hash === l.hash) || sft.find((s) => s.hash === l.hash)?.correct));
  assert.ok(labels3.some((l) => marked.some((m) => m.hash === l.hash)), "no marked sample became a pseudo-label");

  // The decisions survive yet another re-run (a restart reads the log afresh), and the log was only appended to.
  await runRound({ workspace: ws, runId, round: 1, restartFrom: "pairs", events: recorder(), shouldStop: () => false });
  await checkPairs();
  assert.equal(new ReviewLog(selftrainDir(ws)).entries().length, (excluded ? 5 : 4) + marked.length);
});
