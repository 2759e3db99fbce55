import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors, type StoredTensor } from "../../../src/core/model/safetensors";
import { saveTokenizer } from "../../../src/core/tokenizer/tokenizer";
import { trainBpe } from "../../../src/core/tokenizer/bpeTrainer";
import { repoRoot, tempDir } from "../../helpers/paths";
import { llamaShapes, sourceConfig } from "./hfFolder";

const MB = 2 ** 20;
const canMeasure = existsSync("/proc/self/status") && existsSync("/proc/self/clear_refs");

/** A sharded bf16 folder of about 200 MB in float32: embeddings, layers, head, each in its own shard. */
function writeBigFolder(dir: string): { shardBytes: number[] } {
  const config = { ...sourceConfig(32000, "BF16", false), hidden_size: 512, intermediate_size: 1536, num_hidden_layers: 6, num_attention_heads: 8, num_key_value_heads: 4 };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  saveTokenizer(trainBpe(["a b c"], { vocabSize: 260 }), dir);
  const names = [...llamaShapes(config as Parameters<typeof llamaShapes>[0])];
  const groups = [names.slice(0, 1), names.slice(1, -1), names.slice(-1)];
  const weightMap: Record<string, string> = {};
  const shardBytes = groups.map((group, i) => {
    const file = `model-0000${i + 1}-of-00003.safetensors`;
    const tensors = new Map<string, StoredTensor>();
    for (const [name, shape] of group) {
      tensors.set(name, { dtype: "BF16", shape, bytes: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 2).fill(0x3c) });
      weightMap[name] = file;
    }
    writeSafetensors(join(dir, file), tensors, { format: "pt" });
    return statSync(join(dir, file)).size;
  });
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  return { shardBytes };
}

function peakOf(dir: string, mode: "stream" | "whole"): { before: number; peak: number; f32Bytes: number } {
  const r = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", join(repoRoot, "test/core/model/loadPeak.child.ts"), dir, mode], { cwd: repoRoot, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { before: number; peak: number; f32Bytes: number };
}

test("loading a sharded bf16 model peaks near its float32 size, well under float32 + the largest shard", { skip: canMeasure ? false : "needs Linux /proc/self/clear_refs to measure peak memory: skipped" }, (t) => {
  const dir = tempDir(t);
  const { shardBytes } = writeBigFolder(dir);
  const stream = peakOf(dir, "stream");
  const whole = peakOf(dir, "whole");
  const rise = (m: typeof stream): number => m.peak - m.before;
  const largest = Math.max(...shardBytes), total = shardBytes.reduce((a, b) => a + b, 0);
  const report = `float32 ${(stream.f32Bytes / MB).toFixed(0)} MB, shards ${shardBytes.map((b) => (b / MB).toFixed(0)).join("+")} MB; ` +
    `peak rise streaming ${(rise(stream) / MB).toFixed(0)} MB, reading whole files ${(rise(whole) / MB).toFixed(0)} MB`;
  t.diagnostic(report);
  assert.ok(stream.f32Bytes > 180 * MB, report);
  assert.ok(rise(stream) < stream.f32Bytes + largest + 16 * MB, `over float32 + largest shard + 16 MB: ${report}`);
  assert.ok(rise(stream) < stream.f32Bytes + 16 * MB, `streaming should add little to the float32 weights: ${report}`);
  assert.ok(rise(whole) > stream.f32Bytes + total / 2, `the whole-file comparison should hold the files too: ${report}`);
});
