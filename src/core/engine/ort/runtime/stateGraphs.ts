/**
 * Graphs over the model's state rather than its computation, for a provider whose memory JavaScript cannot
 * touch (webgpu, cuda: DeviceState in modelState.ts): the AdamW step, and moving weights in, out, or making zeros.
 * Each takes and gives one tensor per parameter under its Hugging Face name. On the CPU provider the host is
 * the device, and HostState updates its arrays in place instead (adamw.ts).
 */
import { GraphBuilder } from "../onnx/graphBuilder";
import type { Value } from "../onnx/graphRecorder";
/** A state tensor: a parameter, or one row block of it (modelState.ts Slot). */
export interface StateSlot {
  name: string;
  shape: number[];
  decayed: boolean;
}

/** The optimiser graph's inputs and outputs, one of each per parameter. */
export const OptimizerNames = {
  param: (name: string): string => `params.${name}`,
  grad: (name: string): string => `grads.${name}`,
  m: (name: string): string => `adam_m.${name}`,
  v: (name: string): string => `adam_v.${name}`,
  newParam: (name: string): string => `new_params.${name}`,
  newM: (name: string): string => `new_adam_m.${name}`,
  newV: (name: string): string => `new_adam_v.${name}`,
} as const;

/** Scalar inputs of the optimiser graph (float32, as max_grad_norm: see optimizerGraph). */
export const OPTIMIZER_SCALARS = ["beta1", "one_minus_beta1", "beta2", "one_minus_beta2", "bias_correction1", "bias_correction2", "eps", "lr", "decay_factor"] as const;

/**
 * AdamW with global-norm clipping, per parameter, the same float32 operations in the same order as
 * TfEngine.optimizerStep:
 *   norm = sqrt(Σ g²); clip = min(1, max_grad_norm / (norm + 1e-6)); g ← g · clip
 *   m ← m·β1 + g·(1−β1); v ← v·β2 + g²·(1−β2); u = (m / bc1) / (sqrt(v / bc2) + eps)
 *   p ← p·(1 − lr·wd) − u·lr      (norm weights and biases: no decay, and p·1 is skipped)
 * Except: the clip factor is computed in float32 on the device, where TfEngine computes it in float64 on the
 * host and rounds it (they can differ in its last bit), and Σ g² adds the parameters' terms in ReduceSum's order.
 * Every node runs on the WebGPU provider (placement.test.ts), which has no float64 kernels and no variadic Sum:
 * the float64 clip ran on the CPU between the GPU's norm and its updates, and the norm's per-parameter terms
 * crossed to the host for the Sum (GraphBuilder.sumScalars).
 * Inputs per parameter: params.<name>, grads.<name>, adam_m.<name>, adam_v.<name>; the OPTIMIZER_SCALARS [] and
 * max_grad_norm []. Outputs: new_params.<name>, new_adam_m.<name>, new_adam_v.<name>, grad_norm [].
 */
export function optimizerGraph(slots: readonly StateSlot[]): GraphBuilder {
  const b = new GraphBuilder("adamw", "float32");
  const inputs = slots.map(({ name, shape, decayed }) => ({
    name,
    decayed,
    p: b.input(OptimizerNames.param(name), "float32", shape),
    grad: b.input(OptimizerNames.grad(name), "float32", shape),
    m: b.input(OptimizerNames.m(name), "float32", shape),
    v: b.input(OptimizerNames.v(name), "float32", shape),
  }));
  const s = Object.fromEntries(OPTIMIZER_SCALARS.map((k) => [k, b.input(k, "float32", [])])) as Record<(typeof OPTIMIZER_SCALARS)[number], Value>;
  const maxNorm = b.input("max_grad_norm", "float32", []);
  const norm = b.sqrt(b.sumScalars(inputs.map((x) => b.sumSquares(x.grad))));
  b.output(norm, "grad_norm");
  const clip = b.minMax("Min", b.div(maxNorm, b.add(norm, b.scalar(1e-6))), b.scalar(1));
  for (const x of inputs) {
    const g = b.mul(x.grad, clip);
    const m = b.add(b.mul(x.m, s.beta1), b.mul(g, s.one_minus_beta1));
    const v = b.add(b.mul(x.v, s.beta2), b.mul(b.mul(g, g), s.one_minus_beta2));
    const update = b.div(b.div(m, s.bias_correction1), b.add(b.sqrt(b.div(v, s.bias_correction2)), s.eps));
    const decayed = x.decayed ? b.mul(x.p, s.decay_factor) : x.p;
    b.output(b.sub(decayed, b.mul(update, s.lr)), OptimizerNames.newParam(x.name));
    b.output(m, OptimizerNames.newM(x.name));
    b.output(v, OptimizerNames.newV(x.name));
  }
  return b;
}

/** Graph names for moving the state: input <name>, output out.<name>. */
export const MoveNames = { output: (name: string): string => `out.${name}` } as const;

/**
 * One output per parameter equal to its input (an Identity): run with the outputs on the device it uploads
 * weights there, run with device tensors in and the outputs on the CPU it reads them back.
 */
export function moveGraph(slots: readonly StateSlot[]): GraphBuilder {
  const b = new GraphBuilder("move", "float32");
  for (const { name, shape } of slots) {
    const x = b.input(name, "float32", shape);
    b.output(b.emit1("Identity", [x], "float32", shape), MoveNames.output(name));
  }
  return b;
}

/** One zero tensor per parameter (out.<name>), made where the session's outputs live: Adam's first moments. */
export function zerosGraph(slots: readonly StateSlot[]): GraphBuilder {
  const b = new GraphBuilder("zeros", "float32");
  for (const { name, shape } of slots) b.output(b.expand(b.scalar(0), shape), MoveNames.output(name));
  return b;
}
