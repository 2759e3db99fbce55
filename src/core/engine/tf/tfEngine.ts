import type * as TfCore from "@tensorflow/tfjs-core";
import type {} from "@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops";
import { TfLlama, paddedCausalBias, type LayerCache } from "./tfLlama";
import { isDecayed } from "../../model/architecture";
import type { ModelConfig } from "../../model/config";
import type { HostWeights } from "../../model/weights";
import { sftLoss, sequenceLogProbs, dpoLoss, tokenLogProbs } from "./tfLosses";
import { dpoMetricsHost } from "../dpoLoss";
import { leftPadPrompts } from "../../model/promptFormat";
import type { ComputeEngine, DecodeSession, DpoMetrics, OptimizerSettings, TokenBatch } from "../computeEngine";

type Tf = typeof TfCore;
type Tensor = TfCore.Tensor;

/** The reference engine on TensorFlow.js: automatic gradients are the truth other engines are tested against. */
export class TfEngine implements ComputeEngine {
  readonly name = "tfjs";
  readonly model: TfLlama;
  /** Accumulated gradients by variable name (p.name), as tf.variableGrads reports them. */
  private grads = new Map<string, Tensor>();
  private m = new Map<string, Tensor>();
  private v = new Map<string, Tensor>();
  private step = 0;

  constructor(
    readonly tf: Tf,
    readonly config: ModelConfig,
    weights: HostWeights,
    readonly device: string,
  ) {
    this.model = new TfLlama(tf, config, weights);
  }

  private tensors(b: TokenBatch): { inputs: Tensor; targets: Tensor; mask: Tensor } {
    const tf = this.tf;
    return {
      inputs: tf.tensor2d(b.inputs, [b.batch, b.length], "int32"),
      targets: tf.tensor2d(b.targets, [b.batch, b.length], "int32"),
      mask: tf.tensor2d(b.mask, [b.batch, b.length], "float32"),
    };
  }

  private accumulate(grads: TfCore.NamedTensorMap): void {
    for (const [name, g] of Object.entries(grads)) {
      const prev = this.grads.get(name);
      if (prev) {
        this.grads.set(name, this.tf.keep(this.tf.add(prev, g)));
        prev.dispose();
        g.dispose();
      } else {
        this.grads.set(name, this.tf.keep(g));
      }
    }
  }

  private varList(): TfCore.Variable[] {
    return [...this.model.params.values()];
  }

  async sftBackward(batch: TokenBatch, scale: number): Promise<{ loss: number }> {
    const tf = this.tf;
    const t = this.tensors(batch);
    const { value, grads } = tf.variableGrads(() => {
      const { logits } = this.model.forward(t.inputs);
      return tf.mul(sftLoss(tf, logits, t.targets, t.mask), scale) as TfCore.Scalar;
    }, this.varList());
    this.accumulate(grads);
    const loss = (await value.data())[0]! / scale;
    tf.dispose([value, t.inputs, t.targets, t.mask]);
    return { loss };
  }

  async dpoBackward(chosen: TokenBatch, rejected: TokenBatch, refChosen: Float32Array, refRejected: Float32Array, beta: number, scale: number): Promise<DpoMetrics> {
    const tf = this.tf;
    const c = this.tensors(chosen);
    const r = this.tensors(rejected);
    const refC = tf.tensor1d(refChosen);
    const refR = tf.tensor1d(refRejected);
    let pc: Tensor | null = null;
    let pr: Tensor | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const lc = sequenceLogProbs(tf, this.model.forward(c.inputs).logits, c.targets, c.mask);
      const lr = sequenceLogProbs(tf, this.model.forward(r.inputs).logits, r.targets, r.mask);
      pc = tf.keep(lc);
      pr = tf.keep(lr);
      return tf.mul(dpoLoss(tf, lc, lr, refC, refR, beta).loss, scale) as TfCore.Scalar;
    }, this.varList());
    this.accumulate(grads);
    const policyChosen = (await pc!.data()) as Float32Array;
    const policyRejected = (await pr!.data()) as Float32Array;
    tf.dispose([value, c.inputs, c.targets, c.mask, r.inputs, r.targets, r.mask, refC, refR, pc!, pr!]);
    return dpoMetricsHost(policyChosen, policyRejected, refChosen, refRejected, beta);
  }

  async optimizerStep(lr: number, s: OptimizerSettings): Promise<{ gradNorm: number }> {
    const tf = this.tf;
    if (this.grads.size === 0) throw new Error("optimizerStep without accumulated gradients");
    const normT = tf.tidy(() => tf.sqrt(tf.addN([...this.grads.values()].map((g) => tf.sum(tf.square(g))))));
    const gradNorm = (await normT.data())[0]!;
    normT.dispose();
    if (!Number.isFinite(gradNorm)) {
      this.clearGrads();
      throw new Error(`gradient norm is ${gradNorm}: the step was not applied`);
    }
    const clip = Math.min(1, s.maxGradNorm / (gradNorm + 1e-6));
    this.step++;
    const bc1 = 1 - Math.pow(s.beta1, this.step);
    const bc2 = 1 - Math.pow(s.beta2, this.step);
    for (const [name, p] of this.model.params) {
      const g0 = this.grads.get(p.name);
      if (!g0) continue;
      const oldM = this.m.get(name);
      const oldV = this.v.get(name);
      const [m, v] = tf.tidy(() => {
        const g = tf.mul(g0, clip);
        const m = tf.add(tf.mul(oldM ?? tf.zerosLike(p), s.beta1), tf.mul(g, 1 - s.beta1));
        const v = tf.add(tf.mul(oldV ?? tf.zerosLike(p), s.beta2), tf.mul(tf.square(g), 1 - s.beta2));
        // torch.optim.AdamW: decoupled decay first, then the Adam update. Norm weights and biases are not decayed.
        const decay = isDecayed(name) ? s.weightDecay : 0;
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), s.eps));
        p.assign(tf.sub(tf.mul(p, 1 - lr * decay), tf.mul(update, lr)));
        return [m, v];
      });
      oldM?.dispose();
      oldV?.dispose();
      this.m.set(name, m);
      this.v.set(name, v);
    }
    this.clearGrads();
    return { gradNorm };
  }

  private clearGrads(): void {
    for (const g of this.grads.values()) g.dispose();
    this.grads.clear();
  }

  resetOptimizer(): void {
    this.clearGrads();
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
    this.step = 0;
  }

  /** Copies of the gradients accumulated since the last optimizer step, by name (null when none): for parity tests. */
  async accumulatedGradients(): Promise<HostWeights | null> {
    if (this.grads.size === 0) return null;
    const out: HostWeights = new Map();
    for (const [name, p] of this.model.params) {
      const g = this.grads.get(p.name);
      if (g) out.set(name, { shape: p.shape.slice(), data: ((await g.data()) as Float32Array).slice() });
    }
    return out;
  }

  /** Log-probability of every target token, [B, T] (padding included; multiply by the mask to use). */
  async tokenLogProbs(batch: TokenBatch): Promise<Float32Array> {
    const tf = this.tf;
    const out = tf.tidy(() => {
      const t = this.tensors(batch);
      return tokenLogProbs(tf, this.model.forward(t.inputs).logits, t.targets);
    });
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  }

  async sequenceLogProbs(batch: TokenBatch): Promise<Float32Array> {
    const tf = this.tf;
    const out = tf.tidy(() => {
      const t = this.tensors(batch);
      return sequenceLogProbs(tf, this.model.forward(t.inputs).logits, t.targets, t.mask);
    });
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  }

  async startDecoding(prompts: readonly number[][]): Promise<{ session: DecodeSession; logits: Float32Array }> {
    const tf = this.tf;
    const B = prompts.length;
    const { width: T, ids, positions: pos, valid, nextPositions: nextPos } = leftPadPrompts(prompts, this.config.pad_token_id);
    let cache: LayerCache[] = [];
    const run = async (idT: Tensor, posT: Tensor, bias: Tensor): Promise<Float32Array> => {
      const [logits, newCache] = tf.tidy(() => {
        const out = this.model.forward(idT, { positions: posT, bias, cache: cache.length ? cache : undefined });
        const Tn = idT.shape[1] as number;
        const last = out.logits.slice([0, Tn - 1, 0], [B, 1, this.config.vocab_size]).reshape([B, this.config.vocab_size]);
        return [last, out.cache.flatMap((c) => [c.k, c.v])] as [Tensor, Tensor[]];
      });
      for (const c of cache) tf.dispose([c.k, c.v]);
      cache = [];
      for (let i = 0; i < newCache.length; i += 2) cache.push({ k: newCache[i] as Tensor, v: newCache[i + 1] as Tensor });
      tf.dispose([idT, posT, bias]);
      const data = (await logits.data()) as Float32Array;
      logits.dispose();
      return data;
    };
    const first = await run(tf.tensor2d(ids, [B, T], "int32"), tf.tensor2d(pos, [B, T], "int32"), paddedCausalBias(tf, valid, T, 0));
    const session: DecodeSession = {
      step: async (tokens) => {
        for (const row of valid) row.push(true);
        const past = (cache[0]?.k.shape[2] as number) ?? 0;
        const posT = tf.tensor2d(Int32Array.from(nextPos), [B, 1], "int32");
        for (let b = 0; b < B; b++) nextPos[b] = (nextPos[b] as number) + 1;
        return run(tf.tensor2d(Int32Array.from(tokens), [B, 1], "int32"), posT, paddedCausalBias(tf, valid, 1, past));
      },
      dispose: () => {
        for (const c of cache) tf.dispose([c.k, c.v]);
        cache = [];
      },
    };
    return { session, logits: first };
  }

  getWeights(): Promise<HostWeights> {
    return this.model.toHost();
  }

  setWeights(weights: HostWeights): void {
    this.model.load(weights);
  }

  dispose(): void {
    this.resetOptimizer();
    this.model.dispose();
  }
}
