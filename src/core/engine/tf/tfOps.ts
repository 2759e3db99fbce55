import type * as TfCore from "@tensorflow/tfjs-core";
// The chained ops (x.reshape …) and the gradients of every op are registered only by these modules (the
// @tensorflow/tfjs union package imports them; we use tfjs-core alone). Every TF-using module imports this one.
import "@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops";
import "@tensorflow/tfjs-core/dist/register_all_gradients";

type Tf = typeof TfCore;

/**
 * One-hot rows as float32. tfjs-backend-wasm 4.22 writes the integer bit pattern when asked for a float32
 * oneHot (1 reads back as 1.4e-45), so it is built as int32 and cast.
 */
export function oneHotF32(tf: Tf, indices: TfCore.Tensor, depth: number): TfCore.Tensor {
  return tf.cast(tf.oneHot(indices as TfCore.Tensor1D, depth), "float32");
}
