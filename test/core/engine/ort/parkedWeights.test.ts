import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { tinyConfig } from "../../../../src/core/model/config";
import { initWeights, type HostWeights } from "../../../../src/core/model/weights";
import { OrtEngine } from "../../../../src/core/engine/ort/runtime/ortEngine";
import { parkingDirectory, parkWeights, releaseArrays } from "../../../../src/core/engine/ort/runtime/parkedWeights";
import { DEFAULT_OPTIMIZER } from "../../../../src/core/engine/computeEngine";
import { makeBatch } from "../../../../src/core/train/batching";

const c = tinyConfig(40, { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 });
const onDisk = parkingDirectory() !== null;

function copyOf(w: HostWeights): HostWeights {
  return new Map([...w].map(([k, v]) => [k, { shape: v.shape.slice(), data: v.data.slice() }]));
}

function assertSameBits(a: HostWeights, b: HostWeights): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.deepEqual(new Uint32Array(v.data.buffer, v.data.byteOffset, v.data.length), new Uint32Array(b.get(k)!.data.slice().buffer), k);
}

const batch = makeBatch([{ ids: [1, 5, 9, 3, 7, 2], promptLength: 2 }, { ids: [4, 8, 6, 2], promptLength: 1 }], c.pad_token_id, 5);

async function trainOnce(e: OrtEngine): Promise<HostWeights> {
  await e.sftBackward(batch, 1);
  await e.optimizerStep(1e-3, DEFAULT_OPTIMIZER);
  return e.getWeights();
}

test("while the CPU decodes, the engine's own weights are parked on disk and come back bit for bit, for reading and for training", { skip: onDisk ? false : "the temporary directory is memory (tmpfs): nothing is parked there" }, async () => {
  const original = initWeights(c, 3);
  const parkedEngine = new OrtEngine(c, copyOf(original), { threads: 1 }, { adoptWeights: true });
  const plain = new OrtEngine(c, copyOf(original), { threads: 1 });
  try {
    assert.equal(parkedEngine.weightsParked, false);
    const { session, logits } = await parkedEngine.startDecoding([[1, 2, 3], [4, 5]], 4);
    assert.equal(parkedEngine.weightsParked, true, "the decoder holds its copy: the engine's is on disk");
    const next = await session.step([6, 7]);
    // Decoding reads the decoder's copy: the logits are those of the same weights decoded without parking.
    const ref = await plain.startDecoding([[1, 2, 3], [4, 5]], 4);
    assert.deepEqual(logits, ref.logits);
    assert.deepEqual(next, await ref.session.step([6, 7]));
    ref.session.dispose();
    session.dispose();
    // The first training step after it reads them back (paramFeeds): the step of an engine that never parked.
    assert.equal(parkedEngine.weightsParked, true);
    assertSameBits(await trainOnce(parkedEngine), await trainOnce(plain));
    assert.equal(parkedEngine.weightsParked, false, "read back on first use");
    // New weights, a new decoder, parked again; getWeights reads them back as they were.
    const fresh = initWeights(c, 4);
    parkedEngine.setWeights(copyOf(fresh));
    const d2 = await parkedEngine.startDecoding([[3, 4]], 2);
    assert.equal(parkedEngine.weightsParked, true);
    d2.session.dispose();
    assertSameBits(await parkedEngine.getWeights(), fresh);
    assertSameBits(await plain.getWeights(), await trainOnce(new OrtEngine(c, copyOf(original), { threads: 1 })));
    assert.equal(readdirSync(tmpdir()).filter((f) => f.startsWith("selftrain-parked-")).length, 0, "the parked file is unlinked as it is made");
  } finally {
    parkedEngine.dispose();
    plain.dispose();
  }
});

test("parked weights: a whole round trip through the file, and nothing parked where the temporary directory is memory", async () => {
  const arrays = new Map([
    ["a", Float32Array.from([1, -2.5, Math.PI, Number.MIN_VALUE])],
    ["b", new Float32Array(70000).map((_, i) => Math.sin(i))],
  ]);
  const expect = new Map([...arrays].map(([k, v]) => [k, v.slice()]));
  const dir = parkingDirectory();
  if (dir) {
    const p = parkWeights(arrays, dir)!;
    await releaseArrays([...arrays.values()]);
    assert.equal(arrays.get("b")!.length, 0, "the host arrays are freed (detached)");
    const back = p.restore();
    for (const [k, v] of expect) assert.deepEqual(back.get(k), v);
    assert.throws(() => p.restore(), /already restored/);
  }
  if (existsSync("/dev/shm")) assert.equal(parkingDirectory("/dev/shm"), null, "tmpfs is memory: parking there saves nothing");
});
