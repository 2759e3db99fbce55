import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { cpuTf } from "../../helpers/tf";
import { repoRoot, tempDir } from "../../helpers/paths";
import { runVenvJson, skipWithoutVenv } from "../../helpers/venv";
import { tinyTokenizer } from "../../helpers/modelFolders";
import { FAMILY_HF_CONFIGS, randomWeights } from "../engine/engineFixtures";
import { dpoMetricsHost } from "../../../src/core/engine/dpoLoss";
import { validateConfig } from "../../../src/core/model/config";
import { saveCheckpoint } from "../../../src/core/model/checkpoint";
import { promptFormatFor } from "../../../src/core/model/promptFormat";
import type { HostWeights } from "../../../src/core/model/weights";
import { makeBatch } from "../../../src/core/train/batching";
import { OrtEngine } from "../../../src/core/engine/ort/runtime/ortEngine";
import { TfEngine } from "../../../src/core/engine/tf/tfEngine";
import type { ComputeEngine, DpoMetrics } from "../../../src/core/engine/computeEngine";
import { Rng } from "../../../src/core/util/rng";

// Our DPO (the sigmoid loss and TRL's metrics: src/core/engine/dpoLoss.ts, and the engines' DPO graphs) against TRL's
// own code at the version pinned in requirements-dev.txt: DPOTrainer._compute_loss, where TRL computes the loss and
// records its metrics (test/core/train/trl_dpo.py calls it on a bare trainer, no training loop). First on given
// per-sequence log-probabilities, in float64 on both sides; then on a tiny model, where TRL computes the policy's
// and the reference's log-probabilities itself with transformers from the folders we save, and our engines take a
// DPO step on the same pairs: which tokens count, the loss, every metric, and their names.

const skip = skipWithoutVenv(["torch", "transformers", "trl", "accelerate"]);
const SCRIPT = join(repoRoot, "test/core/train/trl_dpo.py");
const OUR_NAMES = ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected"] as const;

interface Case {
  beta: number;
  policy_chosen: number[];
  policy_rejected: number[];
  ref_chosen: number[];
  ref_rejected: number[];
}
interface TrlResult {
  loss: number;
  metrics: Record<string, number>;
}
interface TrlOut {
  trl: string;
  entry: string;
  default_beta: number;
  default_loss_type: string[];
  cases: TrlResult[];
  models?: TrlResult & { policy_logps: number[]; ref_logps: number[] };
}

/** Our metrics under TRL's names: TRL's value of each (the loss is _compute_loss's result, which Trainer logs as "loss"). */
function asTrl(r: TrlResult): Record<string, number> {
  return { ...r.metrics, loss: r.loss };
}

/**
 * Largest |ours − TRL's| / max(1, |TRL's|) over our names. TRL averages rewards/accuracies in float32 (a mean of
 * `(chosen_rewards > rejected_rewards).float()`): 1/3 is 0.3333333432674408 there, so that one is compared to
 * float32's resolution.
 */
function worstRelative(ours: DpoMetrics, theirs: Record<string, number>): { d: number; at: string } {
  let d = 0, at = "";
  for (const k of OUR_NAMES) {
    const their = k === "rewards/accuracies" ? Math.fround(theirs[k]!) : theirs[k]!;
    const mine = k === "rewards/accuracies" ? Math.fround(ours[k]) : ours[k];
    const e = Math.abs(mine - their) / Math.max(1, Math.abs(their));
    if (e >= d) [d, at] = [e, k];
  }
  return { d, at };
}

test("TRL's DPO loss and metrics (DPOTrainer._compute_loss, sigmoid) equal dpoMetricsHost on the same log-probabilities, under the same names", { skip, timeout: 120_000 }, (t) => {
  const rng = new Rng(7);
  const draw = (n: number, scale: number): number[] => Array.from({ length: n }, () => -Math.abs(scale * rng.normal()) - 0.5);
  const cases: Case[] = [
    // dpoLoss.test.ts's hand-computed pair of pairs
    { beta: 0.1, policy_chosen: [-10, -5], policy_rejected: [-20, -7], ref_chosen: [-12, -4], ref_rejected: [-18, -8] },
    // a tie: equal rewards count as not accurate (strictly greater, as TRL's chosen_rewards > rejected_rewards)
    { beta: 0.1, policy_chosen: [-3, -4], policy_rejected: [-5, -6], ref_chosen: [-3, -4.5], ref_rejected: [-5, -5.5] },
    // margins far past float64's exp: TRL's logsigmoid and our log1p forms, both stable
    { beta: 0.5, policy_chosen: [0, -1e5, -7], policy_rejected: [-1e5, 0, -8], ref_chosen: [0, 0, -7], ref_rejected: [0, 0, -8] },
    // one pair; then batches of log-probabilities the size of real rationales, at the betas users set
    { beta: 0.1, policy_chosen: [-42.25], policy_rejected: [-40.5], ref_chosen: [-41], ref_rejected: [-41] },
    ...[0.01, 0.1, 0.3, 1].map((beta) => {
      const rc = draw(16, 60), rr = draw(16, 60);
      return { beta, ref_chosen: rc, ref_rejected: rr, policy_chosen: rc.map((x) => x + 3 * rng.normal()), policy_rejected: rr.map((x) => x + 3 * rng.normal()) };
    }),
  ];
  const out = runVenvJson<TrlOut>(SCRIPT, { cases }, tempDir(t));
  t.diagnostic(`TRL ${out.trl}, ${out.entry}; DPOConfig defaults: beta ${out.default_beta}, loss_type ${JSON.stringify(out.default_loss_type)}`);
  assert.deepEqual(out.default_loss_type, ["sigmoid"], "TRL's default DPO loss is the sigmoid loss ours is");
  assert.equal(out.cases.length, cases.length);
  let worst = { d: 0, at: "" };
  cases.forEach((c, i) => {
    const theirs = asTrl(out.cases[i]!);
    // Every name we log is one TRL logs (beside ours it also logs entropy, logits/*, mean_token_accuracy, num_tokens).
    for (const k of OUR_NAMES) assert.ok(k in theirs, `TRL records no metric named ${k}: ${Object.keys(theirs).join(", ")}`);
    const ours = dpoMetricsHost(c.policy_chosen, c.policy_rejected, c.ref_chosen, c.ref_rejected, c.beta);
    assert.deepEqual(Object.keys(ours).sort(), [...OUR_NAMES].sort());
    const w = worstRelative(ours, theirs);
    assert.ok(w.d < 1e-12, `case ${i}: ${w.at} ours ${ours[w.at as keyof DpoMetrics]}, TRL ${theirs[w.at]}`);
    if (w.d >= worst.d) worst = { d: w.d, at: `case ${i} ${w.at}` };
  });
  // The tie and the hand-computed loss, as TRL says them.
  assert.equal(out.cases[1]!.metrics["rewards/accuracies"], 0.5);
  assert.ok(Math.abs(out.cases[0]!.loss - 0.6555770608907722) < 1e-12);
  // Margins +5e4 (loss 0), −5e4 (loss 5e4) and 0 (loss ln 2).
  assert.ok(Math.abs(out.cases[2]!.loss - (5e4 + Math.LN2) / 3) < 1e-9, String(out.cases[2]!.loss));
  t.diagnostic(`${cases.length} batches: largest relative difference ${worst.d.toExponential(2)} (${worst.at})`);
});

test("a DPO step of both engines on a tiny Qwen2 model: the same completion log-probs, loss and metrics as TRL computing both models itself with transformers", { skip, timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  // tinyTokenizer is nearly byte-level: prompts of 25-60 tokens, sequences up to 84.
  const raw = { ...FAMILY_HF_CONFIGS["qwen2"], vocab_size: tinyTokenizer.vocabSize, max_position_embeddings: 128 };
  const config = validateConfig(raw, "qwen2");
  const refWeights = randomWeights(config, 3);
  const rng = new Rng(11);
  // The policy: the reference after some training (changes large enough for rewards of a few tenths).
  const policyWeights: HostWeights = new Map([...refWeights].map(([n, w]) => [n, { shape: w.shape, data: w.data.map((x) => x + 0.05 * rng.normal()) }]));
  saveCheckpoint(join(dir, "policy"), { config, weights: policyWeights, tokenizer: tinyTokenizer });
  saveCheckpoint(join(dir, "reference"), { config, weights: refWeights, tokenizer: tinyTokenizer });

  // Plain-format pairs of different lengths (right padding on both sides), as the runner encodes them.
  const format = promptFormatFor(tinyTokenizer, "plain");
  const questions = ["Mia has 3 apples and buys 4. How many?", "Tom buys 12 pens for 2 dollars each. Cost?", "3+4?", "Mia has 7 pens."];
  const chosen = ["3+4 = <<3+4=7>>7\n#### 7", "12*2 = <<12*2=24>>24\n#### 24", "#### 7", "She has 7.\n#### 7"];
  const rejected = ["3+4 = <<3+4=8>>8\n#### 8", "#### 14", "3+4 = <<3+4=7>>7 apples\n#### 7", "#### 3"];
  const c = questions.map((q, i) => format.encodeSequence(q, chosen[i]!));
  const r = questions.map((q, i) => format.encodeSequence(q, rejected[i]!));
  const pairs = c.map((s, i) => ({ prompt_ids: s.ids.slice(0, s.promptLength), chosen_ids: s.ids.slice(s.promptLength), rejected_ids: r[i]!.ids.slice(r[i]!.promptLength) }));
  const beta = 0.1;
  const out = runVenvJson<TrlOut>(SCRIPT, { models: { policy: join(dir, "policy"), reference: join(dir, "reference"), beta, pad_token_id: config.pad_token_id, pairs } }, dir).models!;
  const theirs = asTrl(out);

  const maxLength = 128;
  const cb = makeBatch(c, config.pad_token_id, maxLength), rb = makeBatch(r, config.pad_token_id, maxLength);
  assert.equal(cb.truncated + rb.truncated, 0);
  const tf = await cpuTf();
  const engines: Array<{ label: string; make: (w: HostWeights) => ComputeEngine }> = [
    { label: "onnxruntime", make: (w) => new OrtEngine(config, w, { threads: 1 }) },
    { label: "tfjs", make: (w) => new TfEngine(tf, config, w, "cpu") },
  ];
  for (const { label, make } of engines) {
    const reference = make(refWeights);
    const refC = await reference.sequenceLogProbs(cb), refR = await reference.sequenceLogProbs(rb);
    reference.dispose();
    const policy = make(policyWeights);
    const polC = await policy.sequenceLogProbs(cb), polR = await policy.sequenceLogProbs(rb);
    const ours = await policy.dpoBackward(cb, rb, refC, refR, beta, 1);
    policy.dispose();
    // Sequence log-probs over the same completion tokens as TRL's completion_mask (relative: sums of 5-15 tokens).
    const seq = [...polC, ...polR, ...refC, ...refR];
    const want = [...out.policy_logps, ...out.ref_logps];
    const seqWorst = Math.max(...seq.map((x, i) => Math.abs(x - want[i]!) / Math.max(1, Math.abs(want[i]!))));
    assert.ok(seqWorst < 1e-5, `${label}: sequence log-probs ${Array.from(seq).join(", ")} vs TRL's ${want.join(", ")}`);
    // The engine's graph (float32) and dpoMetricsHost on the engine's own log-probs, both against TRL (float64).
    const host = dpoMetricsHost(polC, polR, refC, refR, beta);
    const a = worstRelative(ours, theirs), b = worstRelative(host, theirs);
    assert.ok(a.d < 1e-5, `${label} dpoBackward: ${a.at} ours ${ours[a.at as keyof DpoMetrics]}, TRL ${theirs[a.at]}`);
    assert.ok(b.d < 1e-5, `${label} dpoMetricsHost: ${b.at} ours ${host[b.at as keyof DpoMetrics]}, TRL ${theirs[b.at]}`);
    t.diagnostic(`${label}: sequence log-probs ${seqWorst.toExponential(2)}, dpoBackward's metrics ${a.d.toExponential(2)} (${a.at}), dpoMetricsHost ${b.d.toExponential(2)} (relative to TRL in float64)`);
  }
  // Not a trivial comparison: rewards of some size, and pairs on both sides of the margin.
  t.diagnostic(`TRL: loss ${theirs["loss"]!.toFixed(6)}, rewards/margins ${theirs["rewards/margins"]!.toFixed(4)}, rewards/accuracies ${theirs["rewards/accuracies"]}`);
  assert.ok(Math.abs(theirs["rewards/chosen"]!) > 1e-2 && Math.abs(theirs["rewards/rejected"]!) > 1e-2, JSON.stringify(theirs));
});
