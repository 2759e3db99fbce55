import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { availableParallelism } from "node:os";
import { loadCheckpoint, saveCheckpoint, sourceDtype, stopTokenIds, torchDtypeName, type Checkpoint } from "../model/checkpoint";
import { promptFormatFor, type EncodedSequence, type PromptFormat } from "../model/promptFormat";
import { createEngine } from "../engine/auto/createEngine";
import type { ComputeEngine } from "../engine/computeEngine";
import { trainSft, trainDpo, referenceLogProbs, visitedRows, type StepLog, type TrainSettings } from "../train/trainer";
import { limitPrompt } from "../train/batching";
import { decodeSettings, sampleRationales } from "../sample/sampler";
import { CancelledError } from "../util/cancel";
import { cutTornTailSync, readJsonl, replaceJsonl, tornFields, JsonlWriter, type TornCut } from "../store/jsonl";
import { writeJsonAtomic } from "../store/atomic";
import { writeOnnxModel } from "../engine/modelExport";
import { contentHash } from "../store/hash";
import type { RunStore } from "../store/runStore";
import type { ReviewLog } from "../store/reviewLog";
import { loadRunData, type RunData } from "./runData";
import { ensureBaseModel } from "./modelFiles";
import { toSampleRecord, evaluateSplit } from "./evaluate";
import { buildPairs, type Candidate } from "./pairs";
import { selectPseudoLabels } from "./pseudoLabels";
import { dropSamplingProgress, loadSamplingProgress, saveSamplingProgress, type SamplingProgress } from "./samplingProgress";
import { humanDecisions, type HumanDecisions } from "./humanView";
import type { SelfTrainConfig, StageTraining } from "./configTypes";
import type { Example } from "../data/example";
import type { StageName, StageCheckpoint, SampleRecord, PairRecord, PseudoLabelRecord } from "../../shared/runTypes";
import type { RunnerEvents } from "./runEvents";
import { METRICS_FORMAT_VERSION, TRAIN_STAGES, type MetricRecord, type RoundSummaryRecord, type TrainStage, type TrainStepRecord } from "../../shared/metricRecord";
import { roundStages } from "./stages";

export interface RunnerOptions {
  workspace: string;
  config: SelfTrainConfig;
  store: RunStore;
  reviews: ReviewLog;
  events: RunnerEvents;
  shouldStop: () => boolean;
}

/**
 * Runs the method's stages against the run store. Every stage starts by discarding what an interrupted
 * attempt of itself left, writes its artefacts, and is marked done last, so a run killed at any point
 * resumes at the first unfinished stage with nothing duplicated or lost.
 */
export class SelfTrainRunner {
  private data: RunData | null = null;
  private base: Checkpoint | null = null;
  /** The types of the checkpoint the running stage wrote, for its manifest record. */
  private saved: StageCheckpoint | undefined;

  constructor(private readonly o: RunnerOptions) {}

  private get c(): SelfTrainConfig {
    return this.o.config;
  }

  /** Runs every unfinished stage of rounds 0…round. */
  async runThrough(round: number): Promise<void> {
    for (let n = 0; n <= round; n++) {
      for (const stage of roundStages(n, this.o.store.manifest.mode)) await this.runStage(n, stage);
    }
  }

  private async prepare(): Promise<{ data: RunData; base: Checkpoint }> {
    if (!this.data) {
      this.data = await loadRunData(this.c, this.o.workspace);
      for (const message of this.data.notes) this.o.events.log({ level: "info", message });
      // Allowed (settings travel between machines, and a pinned count keeps reductions reproducible), but said:
      // on 2 cores a 12-step warm-up took 5 s at 0 (one per core), 47 s at 32 threads and minutes at 128.
      const cores = availableParallelism();
      if (this.c.engine.name !== "tfjs" && this.c.engine.threads > cores) {
        this.o.events.log({ level: "warn", message: `engine.threads is ${this.c.engine.threads}, more than this machine's ${cores} logical cores: ONNX Runtime's threads wait on one another and every step is many times slower; 0 takes one per core` });
      }
    }
    this.base ??= ensureBaseModel(this.o.store.dir, this.c, this.data.train, this.o.workspace);
    return { data: this.data, base: this.base };
  }

  private async runStage(round: number, stage: StageName): Promise<void> {
    const store = this.o.store;
    if (store.stage(round, stage).state === "done") return;
    const { events } = this.o;
    await store.setStage(round, stage, { state: "running", error: undefined, checkpoint: undefined });
    events.stage({ round, stage, state: "running" });
    this.saved = undefined;
    try {
      await this.dropStageMetrics(round, stage);
      const counts = await this.stageBody(round, stage);
      await store.setStage(round, stage, { state: "done", counts, ...(this.saved ? { checkpoint: this.saved } : {}) });
      events.stage({ round, stage, state: "done", counts });
    } catch (e) {
      const cancelled = e instanceof CancelledError;
      const message = e instanceof Error ? e.message : String(e);
      await store.setStage(round, stage, { state: cancelled ? "cancelled" : "failed", error: cancelled ? undefined : message });
      events.stage({ round, stage, state: cancelled ? "cancelled" : "failed", error: cancelled ? undefined : message });
      throw e;
    }
  }

  private stageBody(round: number, stage: StageName): Promise<Record<string, number>> {
    switch (stage) {
      case "warmup": return this.warmup();
      case "sample-dpo": return this.sample(round, "samples-dpo.jsonl", this.currentSft(round), this.c.sampling.dpoSamples, stage);
      case "pairs": return this.pairs(round);
      case "dpo": return this.dpo(round);
      case "sample-sft": return this.sample(round, "samples-sft.jsonl", this.c.mode === "st" ? this.currentSft(round) : this.o.store.checkpointDir(round, "dpo"), this.c.sampling.sftSamples, stage);
      case "pseudo-labels": return this.pseudoLabels(round);
      case "sft": return this.sft(round);
      case "eval": return this.evaluate(round);
    }
  }

  /** The SFT model a round starts from: the warm-up for round 1, else the previous round's SFT model. */
  private currentSft(round: number): string {
    return round <= 1 ? this.o.store.checkpointDir(0, "warmup") : this.o.store.checkpointDir(round - 1, "sft");
  }

  private pickLogged = false;
  /** Why "auto" fell back to the engine it took (the faster could not start); recorded with every metric. */
  private engineFallback: string | null = null;

  private async engineFor(dir: string | Checkpoint): Promise<{ engine: ComputeEngine; ckpt: Checkpoint; format: PromptFormat }> {
    const ckpt = typeof dir === "string" ? loadCheckpoint(dir) : dir;
    // The model's prompt format: the one way every stage turns questions and rationales into tokens. Made
    // before the engine, so a chat template that cannot be used fails at once.
    const format = promptFormatFor(ckpt.tokenizer, this.c.model.promptFormat, typeof dir === "string" ? relative(this.o.workspace, dir) || dir : this.c.model.init);
    const { name, tfBackend, executionProvider, threads } = this.c.engine;
    const engine = await createEngine({ engine: name, tfBackend, executionProvider, threads }, ckpt.config, ckpt.weights, (pick) => {
      this.engineFallback = pick.fallback ?? null;
      if (!this.pickLogged) this.o.events.log({ level: pick.fallback ? "warn" : "info", message: pick.fallback ? `${pick.reason}: the round runs on the slower engine` : pick.reason });
      this.pickLogged = true;
    }, true);
    this.o.events.log({ level: "info", message: `engine: ${engine.name} on ${engine.device}` });
    // The weights are the engine's now (handed over, not copied): the stage reads them from the engine only.
    return { engine, ckpt: { ...ckpt, weights: new Map() }, format };
  }

  private settings(t: StageTraining, examples: number, seedOffset: number): TrainSettings {
    const steps = t.steps > 0 ? t.steps : Math.max(1, Math.ceil((t.epochs * examples) / t.batchSize));
    return { steps, batchSize: t.batchSize, microBatchSize: t.microBatchSize, learningRate: t.learningRate, warmupRatio: t.warmupRatio, maxLength: t.maxLength, seed: this.c.seed * 1000 + seedOffset };
  }

  private async train(round: number, stage: "warmup" | "sft", gold: readonly Example[], extra: readonly PseudoLabelRecord[], outDir: string, from?: string): Promise<Record<string, number>> {
    const { base } = await this.prepare();
    const { engine, ckpt, format } = await this.engineFor(from ?? base);
    try {
      const t = stage === "warmup" ? this.c.warmup : this.c.sft;
      const encode = (question: string, rationale: string): EncodedSequence => limitPrompt([format.encodeSequence(question, rationale)], t.maxLength, t.maxPromptLength)[0]!;
      const data = [...gold.map((e) => encode(e.question, e.rationale)), ...extra.map((p) => encode(p.question, p.rationale))];
      const s = this.settings(t, data.length, round * 10 + (stage === "warmup" ? 1 : 2));
      const logs = await trainSft(engine, data, s, { onStep: (l) => this.stepMetric(round, stage, l, engine), shouldStop: this.o.shouldStop });
      await this.appendMetrics(round, stage, logs.map((l) => this.trainRecord(round, stage, l, engine)));
      await this.save(outDir, { ...ckpt, weights: await engine.getWeights() }, { round: String(round), stage });
      return { steps: logs.length, examples: data.length, tokens: logs.reduce((a, l) => a + l.tokens, 0), ms: logs.at(-1)?.elapsedMs ?? 0, finalLoss: logs.at(-1)?.loss ?? 0 };
    } finally {
      engine.dispose();
    }
  }

  private async warmup(): Promise<Record<string, number>> {
    const { data } = await this.prepare();
    return this.train(0, "warmup", data.train, [], this.o.store.checkpointDir(0, "warmup"));
  }

  private async sft(round: number): Promise<Record<string, number>> {
    const { data } = await this.prepare();
    const labels = await this.readInput<PseudoLabelRecord>(round, "pseudo-labels.jsonl", "pseudo-labels", "pseudoLabels");
    // method.md step 7 restarts from the base model; sft.from "previous" goes on from the round's SFT model.
    const from = this.c.sft.from === "previous" ? this.currentSft(round) : undefined;
    return this.train(round, "sft", data.train, labels, this.o.store.checkpointDir(round, "sft"), from);
  }

  private async sample(round: number, file: string, modelDir: string, n: number, stage: StageName): Promise<Record<string, number>> {
    const { data } = await this.prepare();
    const { engine, ckpt, format } = await this.engineFor(modelDir);
    const path = this.o.store.path(round, file);
    const perChunk = Math.max(1, Math.floor(this.c.sampling.batchSize / n));
    // Every chunk of questions is sampled from its own seed, so a stage stopped after chunk c and continued gives
    // the records of an uninterrupted run. What was finished is kept; the settings must be the same to continue.
    const key = JSON.stringify({ modelDir: relative(this.o.store.dir, modelDir), model: statSync(join(modelDir, "config.json")).mtimeMs, n, perChunk, sampling: this.c.sampling, seed: this.c.seed, promptFormat: this.c.model.promptFormat, questions: data.train.length });
    // The engine and its provider or backend ("onnxruntime on cpu"), without the details after them.
    const engineId = `${engine.name} on ${engine.device.split(" (")[0]}`;
    const resumed = await this.resumeSampling(path, key, engineId, data.train, perChunk, n, round, stage);
    const writer = await JsonlWriter.open<SampleRecord>(path, { truncate: resumed === null });
    const started = Date.now();
    let { tokens, correct, records: total, chunks } = resumed ?? { tokens: 0, correct: 0, records: 0, chunks: 0 };
    const before = resumed?.ms ?? 0;
    const first = chunks * perChunk;
    try {
      for (let i = first; i < data.train.length; i += perChunk) {
        const part = data.train.slice(i, i + perChunk);
        const out = await sampleRationales(engine, format, part.map((e) => e.question), {
          ...decodeSettings(this.c.sampling), n, seed: this.c.seed * 7_777 + round * 131 + i, shouldStop: this.o.shouldStop, stopIds: stopTokenIds(ckpt),
        });
        part.forEach((e, j) => out[j]!.forEach((s, k) => {
          const r = toSampleRecord(e, s, round, k);
          writer.append(r);
          tokens += s.tokens.length;
          total++;
          if (r.correct) correct++;
        }));
        await writer.flush();
        chunks++;
        const ms = before + Date.now() - started;
        await saveSamplingProgress(path, { key, engine: engineId, chunks, records: total, tokens, correct, ms });
        const done = Math.min(data.train.length, i + perChunk);
        const elapsed = Date.now() - started;
        this.o.events.progress({ round, stage, done, total: data.train.length, etaMs: (elapsed / (done - first)) * (data.train.length - done) });
      }
    } finally {
      await writer.close();
      engine.dispose();
    }
    dropSamplingProgress(path);
    return { samples: total, correct, tokens, ms: before + Date.now() - started };
  }

  /** The finished chunks of a sampling stage that stopped, or null to start from the first question (saying why). */
  private async resumeSampling(path: string, key: string, engine: string, questions: readonly Example[], perChunk: number, n: number, round: number, stage: StageName): Promise<SamplingProgress | null> {
    const r = await loadSamplingProgress(path, key, engine, questions, perChunk, n);
    if ("restart" in r) {
      if (r.restart) this.warn(`${relative(this.o.workspace, path)}: ${r.restart}; sampling starts again from the first question`);
      return null;
    }
    const done = r.progress.chunks * perChunk;
    this.o.events.log({ level: "info", message: `round ${round} ${stage}: resuming after ${Math.min(done, questions.length).toLocaleString("en-US")} of ${questions.length.toLocaleString("en-US")} questions (${r.progress.records.toLocaleString("en-US")} samples kept)` });
    return r.progress;
  }

  /**
   * A stage's input: the records another stage wrote. A torn last line is named (file:line) and left out, and
   * fewer records than the writing stage counted is said, never passed over.
   */
  private async readInput<T>(round: number, file: string, from: StageName, countKey: string): Promise<T[]> {
    const path = this.o.store.path(round, file);
    const { records, tornLine } = await readJsonl<T>(path);
    const shown = relative(this.o.workspace, path);
    if (tornLine !== undefined) this.warn(`${shown}:${tornLine}: the last line is cut off (an interrupted write or an edit); it is left out`);
    const recorded = this.o.store.stage(round, from).counts?.[countKey];
    if (recorded !== undefined && records.length < recorded) {
      this.warn(`${shown} holds ${records.length} of the ${recorded} records that round ${round}'s ${from} stage wrote; going on with ${records.length} (run the round again --from ${from} to redo them)`);
    }
    return records;
  }

  private warn(message: string): void {
    this.o.events.log({ level: "warn", message });
  }

  private human(): HumanDecisions {
    return humanDecisions(this.o.reviews);
  }

  private async pairs(round: number): Promise<Record<string, number>> {
    const { data } = await this.prepare();
    const candidates: Candidate[] = data.train.map((e) => ({ hash: contentHash(e.question, e.rationale), questionId: e.id, question: e.question, rationale: e.rationale, correct: true, origin: "gold" }));
    // Positives and negatives are pooled over every round so far.
    for (let r = 1; r <= round; r++) {
      for (const s of await this.readInput<SampleRecord>(r, "samples-dpo.jsonl", "sample-dpo", "samples")) {
        candidates.push({ hash: s.hash, questionId: s.questionId, question: s.question, rationale: s.rationale, correct: s.correct, origin: "sample" });
      }
    }
    const built = buildPairs(candidates, this.human(), round, { maxPairsPerQuestion: this.c.pairs.maxPerQuestion, duplicateThreshold: this.c.pairs.duplicateThreshold });
    const writer = await JsonlWriter.open<PairRecord>(this.o.store.path(round, "pairs.jsonl"), { truncate: true });
    for (const p of built.pairs) writer.append(p);
    await writer.close();
    return { pairs: built.pairs.length, ...built.counts };
  }

  private async dpo(round: number): Promise<Record<string, number>> {
    const pairs = await this.readInput<PairRecord>(round, "pairs.jsonl", "pairs", "pairs");
    const policyDir = this.currentSft(round);
    if (pairs.length === 0) {
      // No pairs, nothing to prefer: the DPO model is the SFT model, and the metrics say so.
      this.o.events.log({ level: "warn", message: `round ${round}: no preference pairs were built; the DPO step keeps the SFT model` });
      await this.save(this.o.store.checkpointDir(round, "dpo"), loadCheckpoint(policyDir), { round: String(round), stage: "dpo" });
      return { steps: 0, pairs: 0 };
    }
    const { engine, ckpt, format } = await this.engineFor(policyDir);
    try {
      // Both sides of a pair keep the same prompt; the reference log-probs below are of these same sequences.
      const encoded = pairs.map((p) => {
        const [chosen, rejected] = limitPrompt([format.encodeSequence(p.question, p.chosen), format.encodeSequence(p.question, p.rejected)], this.c.dpo.maxLength, this.c.dpo.maxPromptLength);
        return { chosen: chosen!, rejected: rejected! };
      });
      const s = this.settings(this.c.dpo, pairs.length, round * 10 + 3);
      // The policy starts as the reference, so the reference log-probs are the policy's, computed once, and only
      // for the pairs the steps draw (fewer than all when steps × batchSize < pairs).
      const rows = visitedRows(encoded.length, s);
      if (rows.length < encoded.length) this.o.events.log({ level: "info", message: `round ${round} dpo: ${s.steps} steps × ${s.batchSize} pairs draw ${rows.length} of the ${encoded.length} pairs; the reference log-probabilities are computed for those` });
      const refStarted = Date.now();
      const ref = await referenceLogProbs(engine, encoded, s.microBatchSize, s.maxLength, this.o.shouldStop, rows, (done, total) =>
        this.o.events.progress({ round, stage: "dpo", done, total, etaMs: ((Date.now() - refStarted) / done) * (total - done), unit: "reference pairs" }));
      const logs = await trainDpo(engine, encoded, ref, this.c.dpo.beta, s, { onStep: (l) => this.stepMetric(round, "dpo", l, engine), shouldStop: this.o.shouldStop });
      await this.appendMetrics(round, "dpo", logs.map((l) => this.trainRecord(round, "dpo", l, engine)));
      await this.save(this.o.store.checkpointDir(round, "dpo"), { ...ckpt, weights: await engine.getWeights() }, { round: String(round), stage: "dpo" });
      const last = logs.slice(-Math.max(1, Math.ceil(logs.length / 10)));
      const mean = (k: "rewards/accuracies" | "rewards/margins"): number => last.reduce((a, l) => a + (l.dpo?.[k] ?? 0), 0) / last.length;
      return { steps: logs.length, pairs: pairs.length, tokens: logs.reduce((a, l) => a + l.tokens, 0), ms: logs.at(-1)?.elapsedMs ?? 0, finalLoss: logs.at(-1)?.loss ?? 0, rewardAccuracy: mean("rewards/accuracies"), rewardMargin: mean("rewards/margins") };
    } finally {
      engine.dispose();
    }
  }

  private async pseudoLabels(round: number): Promise<Record<string, number>> {
    const { data } = await this.prepare();
    const samples = await this.readInput<SampleRecord>(round, "samples-sft.jsonl", "sample-sft", "samples");
    const earlier = round > 1 ? await this.readInput<PseudoLabelRecord>(round - 1, "pseudo-labels.jsonl", "pseudo-labels", "pseudoLabels") : [];
    const gold = new Map(data.train.map((e) => [e.id, e.rationale]));
    const r = selectPseudoLabels(samples, earlier, gold, this.human(), round, { capPercentile: this.c.pseudoLabels.capPercentile, duplicateThreshold: this.c.pairs.duplicateThreshold });
    const writer = await JsonlWriter.open<PseudoLabelRecord>(this.o.store.path(round, "pseudo-labels.jsonl"), { truncate: true });
    for (const l of r.labels) writer.append(l);
    await writer.close();
    return { ...r.counts, pseudoLabels: r.labels.length };
  }

  private async evaluate(round: number): Promise<Record<string, number>> {
    const { data } = await this.prepare();
    const dir = round === 0 ? this.o.store.checkpointDir(0, "warmup") : this.o.store.checkpointDir(round, "sft");
    const { engine, ckpt, format } = await this.engineFor(dir);
    const writer = await JsonlWriter.open<SampleRecord & { split: string }>(this.o.store.path(round, "eval.jsonl"), { truncate: true });
    const counts: Record<string, number> = {};
    try {
      for (const split of ["dev", "test"] as const) {
        const examples = this.c.eval.maxQuestions > 0 ? data[split].slice(0, this.c.eval.maxQuestions) : data[split];
        // No questions, no accuracy: the summary holds null ("–"), not a 0% nobody measured.
        if (examples.length === 0) continue;
        const splitStarted = Date.now();
        const r = await evaluateSplit(engine, format, examples, round, {
          decode: decodeSettings(this.c.sampling), passSamples: this.c.eval.passSamples, passK: this.c.eval.passK, seed: this.c.seed + 17, shouldStop: this.o.shouldStop,
          stopIds: stopTokenIds(ckpt),
        }, (done, total) => this.o.events.progress({ round, stage: "eval", done, total, etaMs: ((Date.now() - splitStarted) / done) * (total - done), unit: `${split} questions` }));
        for (const rec of r.records) writer.append({ ...rec, split });
        counts[`${split}Accuracy`] = r.accuracy;
        if (r.passAtK !== null) counts[`${split}PassAtK`] = r.passAtK;
        counts[`${split}Questions`] = examples.length;
      }
    } finally {
      await writer.close();
      engine.dispose();
    }
    await this.appendMetrics(round, "eval", [this.roundSummary(round, counts, engine)]);
    return counts;
  }

  private roundSummary(round: number, evalCounts: Record<string, number>, engine: ComputeEngine): RoundSummaryRecord {
    const st = (s: StageName): Record<string, number> => this.o.store.stage(round, s).counts ?? {};
    const stages: StageName[] = roundStages(round, this.o.store.manifest.mode).filter((s) => s !== "eval");
    const tokens = stages.reduce((a, s) => a + (st(s)["tokens"] ?? 0), 0);
    const ms = stages.reduce((a, s) => a + (st(s)["ms"] ?? 0), 0);
    const pl = st("pseudo-labels");
    return {
      kind: "round", v: METRICS_FORMAT_VERSION, runId: this.o.store.runId, round, mode: this.o.store.manifest.mode, time: new Date().toISOString(), engine: engine.name, device: engine.device, engineFallback: this.engineFallback,
      // The eval stage's counts already use the summary's names.
      devAccuracy: evalCounts["devAccuracy"] ?? null, testAccuracy: evalCounts["testAccuracy"] ?? null,
      devPassAtK: evalCounts["devPassAtK"] ?? null, testPassAtK: evalCounts["testPassAtK"] ?? null, k: this.c.eval.passK,
      samples: (st("sample-dpo")["samples"] ?? 0) + (st("sample-sft")["samples"] ?? 0),
      positives: st("pairs")["positives"] ?? 0, negatives: st("pairs")["negatives"] ?? 0, pairs: st("pairs")["pairs"] ?? 0,
      pseudoLabels: pl["kept"] ?? 0, distinctPerQuestion: pl["questions"] ? (pl["kept"] ?? 0) / pl["questions"] : 0,
      rewardAccuracy: st("dpo")["rewardAccuracy"] ?? null, rewardMargin: st("dpo")["rewardMargin"] ?? null,
      tokensPerSecond: ms > 0 ? (tokens * 1000) / ms : 0,
      wallMs: stages.concat("eval").reduce((a, s) => a + durationMs(this.o.store.stage(round, s)), 0),
    };
  }

  private trainRecord(round: number, stage: TrainStage, l: StepLog, engine: ComputeEngine): TrainStepRecord {
    const { dpo, ...step } = l;
    return { kind: "train", v: METRICS_FORMAT_VERSION, runId: this.o.store.runId, round, stage, engine: engine.name, device: engine.device, engineFallback: this.engineFallback, ...step, ...(dpo ?? {}) };
  }

  private stepMetric(round: number, stage: TrainStage, l: StepLog, engine: ComputeEngine): void {
    this.o.events.metric(this.trainRecord(round, stage, l, engine));
    this.o.events.progress({ round, stage, done: l.step, total: l.totalSteps, etaMs: (l.elapsedMs / l.step) * (l.totalSteps - l.step) });
  }

  /**
   * A stage's checkpoint, with the run's whole config beside it (so every model says how it was made). The
   * weights stay float32 whatever the source's type, and the next stage loads exactly what this one ended with:
   * at the learning rates pretrained models train at (DPO 3e-7 to 5e-6) most updates are smaller than half a
   * bf16 step, and rounding to bf16 between stages would undo them. Export writes the source's type.
   */
  private async save(dir: string, ckpt: Checkpoint, meta: Record<string, string>): Promise<void> {
    saveCheckpoint(dir, ckpt, meta, { dtype: "F32" });
    this.saved = { dtype: "float32", sourceDtype: torchDtypeName(sourceDtype(ckpt.source)) };
    // The inference model as ONNX (decoding with a KV cache, weights inside or beside), for other ONNX tools.
    await writeOnnxModel(dir, ckpt.config, ckpt.weights);
    await writeJsonAtomic(join(dir, "selftrain-config.json"), this.c);
  }

  private async appendMetrics(round: number, stage: StageName, records: MetricRecord[]): Promise<void> {
    // The config beside the metrics too: a metrics file is read without its run folder at hand.
    mkdirSync(this.o.store.roundDir(round), { recursive: true });
    await writeJsonAtomic(join(this.o.store.roundDir(round), "selftrain-config.json"), this.c);
    const file = this.o.store.path(round, "metrics.jsonl");
    await this.repairMetrics(round, file, stage);
    const w = await JsonlWriter.open<MetricRecord>(file, {});
    // Torn after the repair above (another writer of this file): said the same way, from what is there now.
    if (w.repaired) this.reportTornMetrics(round, file, w.repaired, (await readJsonl<MetricRecord>(file)).records, stage);
    for (const r of records) w.append(r);
    await w.close();
  }

  /** A restarted stage first removes the metrics an interrupted attempt of it appended. */
  private async dropStageMetrics(round: number, stage: StageName): Promise<void> {
    const file = this.o.store.path(round, "metrics.jsonl");
    if (!existsSync(file)) return;
    await this.repairMetrics(round, file, stage);
    const { records } = await readJsonl<MetricRecord>(file);
    const keep = records.filter((r) => !(r.kind === "train" && r.stage === stage) && !(stage === "eval" && r.kind === "round"));
    if (keep.length === records.length) return;
    // A new file renamed over the old one: a kill at any moment leaves the old records or the kept ones.
    await replaceJsonl(file, keep);
  }

  /**
   * Cuts a torn last line off metrics.jsonl (its bytes are kept beside it, metrics.jsonl.torn-<time>) and says
   * what is now missing and how to get it back: a metric is recomputed only by running its stage again.
   */
  private async repairMetrics(round: number, file: string, running: StageName): Promise<void> {
    const cut = cutTornTailSync(file);
    if (cut) this.reportTornMetrics(round, file, cut, (await readJsonl<MetricRecord>(file)).records, running);
  }

  /**
   * The warning for a torn metrics line: which record it was (what of it could be read), and which records of
   * the round's finished stages the file now lacks (steps 1…counts.steps of a training stage, the eval's round
   * summary), with the command that writes them again. `running`: the stage starting now, whose records are
   * written again anyway.
   */
  private reportTornMetrics(round: number, file: string, cut: TornCut, records: readonly MetricRecord[], running: StageName): void {
    const f = tornFields(cut.text);
    const stageOf = typeof f["stage"] === "string" ? f["stage"] : null;
    const was =
      f["kind"] === "train" ? `${stageOf ?? "a training stage"}'s record of step ${typeof f["step"] === "number" ? f["step"] : "? (its number was cut off)"}` : f["kind"] === "round" ? "the round summary the eval stage writes" : "a record whose kind was cut off";
    const missing: string[] = [];
    let from: StageName | null = null;
    for (const stage of roundStages(round, this.o.store.manifest.mode)) {
      const st = this.o.store.stage(round, stage);
      if (stage === running || st.state !== "done") continue;
      let lacks: string | null = null;
      if ((TRAIN_STAGES as readonly string[]).includes(stage)) {
        const want = st.counts?.["steps"] ?? 0;
        const have = new Set(records.filter((r): r is TrainStepRecord => r.kind === "train" && r.stage === stage).map((r) => r.step));
        const lost = Array.from({ length: want }, (_, i) => i + 1).filter((n) => !have.has(n));
        if (lost.length > 0) lacks = `${stage} step${lost.length === 1 ? "" : "s"} ${stepRanges(lost)} of ${want}`;
      } else if (stage === "eval" && !records.some((r) => r.kind === "round")) lacks = "the round summary (eval)";
      if (lacks !== null) {
        missing.push(lacks);
        from ??= stage;
      }
    }
    const shown = relative(this.o.workspace, file);
    const head = `${shown}:${cut.line}: a cut-off last line (${cut.bytes} bytes, from an interrupted write) was removed and kept in ${basename(cut.keptAt)}; it was ${was}`;
    if (from !== null) {
      this.warn(`${head}. ${shown} now lacks ${missing.join(", ")}: \`selftrain round --run ${this.o.store.runId} --round ${round} --from ${from}\` recomputes them (running ${from} and the stages after it again)`);
    } else {
      this.warn(`${head}; no finished stage's record is missing${stageOf === running ? ` (the ${running} stage starting now writes its records again)` : ""}`);
    }
  }
}

/** 3, 5, 6, 7 → "3, 5-7". */
function stepRanges(steps: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < steps.length; ) {
    let j = i;
    while (j + 1 < steps.length && steps[j + 1] === steps[j]! + 1) j++;
    parts.push(j === i ? String(steps[i]) : `${steps[i]}-${steps[j]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

/** A stage's wall time; a stage still running (the eval writing this summary) counts up to now. */
function durationMs(s: { startedAt?: string; finishedAt?: string }): number {
  if (!s.startedAt) return 0;
  return (s.finishedAt ? Date.parse(s.finishedAt) : Date.now()) - Date.parse(s.startedAt);
}

