import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpuTf } from "../../helpers/tf";
import { tinyConfig } from "../../../src/core/model/config";
import { initWeights } from "../../../src/core/model/weights";
import { TfLlama } from "../../../src/core/engine/tf/tfLlama";
import { repoRoot, tempDir } from "../../helpers/paths";

const python = "/usr/bin/python3";
const hasTorch = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" }).status === 0;

for (const tied of [false, true]) {
  test(`forward logits equal an independent PyTorch implementation of HF Llama (float64), GQA, ${tied ? "tied" : "untied"} head`, { skip: hasTorch ? false : "PyTorch absent (apt-get install python3-torch): skipped" }, async (t) => {
    const tf = await cpuTf();
    const config = tinyConfig(37, { hidden_size: 32, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: tied, rope_theta: 500 });
    const weights = initWeights(config, 11, 0.2);
    const ids = [[1, 5, 9, 30, 2, 7, 7, 12, 3, 4, 36, 0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]];
    const job = join(tempDir(t), "job.json");
    writeFileSync(job, JSON.stringify({ config, ids, weights: Object.fromEntries([...weights].map(([n, w]) => [n, { shape: w.shape, data: Array.from(w.data) }])) }));
    const r = spawnSync(python, [join(repoRoot, "scripts/bench/peer_train.py"), "--logits", job], { encoding: "utf8", maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr);
    const want = JSON.parse(r.stdout) as number[][][];
    const model = new TfLlama(tf, config, weights);
    const got = tf.tidy(() => model.forward(tf.tensor2d(ids, [2, ids[0]!.length], "int32")).logits.arraySync() as number[][][]);
    model.dispose();
    let worst = 0;
    want.forEach((row, b) => row.forEach((pos, i) => pos.forEach((x, v) => (worst = Math.max(worst, Math.abs(x - got[b]![i]![v]!))))));
    assert.ok(worst < 1e-4, `max |tfjs − torch| = ${worst}`);
  });
}
