import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";

/** TensorFlow.js on the plain CPU backend: float32 everywhere, the same numbers on every machine. */
export async function cpuTf(): Promise<typeof tf> {
  await tf.setBackend("cpu");
  await tf.ready();
  return tf;
}

/** TensorFlow.js on the backend the product would choose here (WebAssembly on our machines): for training tests. */
export async function fastTf(): Promise<typeof tf> {
  const { initTfBackend, getTf } = await import("../../src/core/engine/tf/tfBackend");
  await initTfBackend();
  return getTf() as unknown as typeof tf;
}
