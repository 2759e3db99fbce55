/**
 * Parameters taken as row blocks by the graphs: the webgpu engine keeps a vocabulary table larger than one GPU
 * buffer (1 GiB) so (runtime/modelState.ts splitSlots), each block a graph input `<name>#<k>` with its own gradient. The
 * embedding lookup sums masked per-block gathers (blockedGather); the output projection takes its vocabulary
 * chunks within blocks (llamaOps projectedTokenLogProbs). No tensor of the whole table is made.
 */
import type { GraphBuilder } from "../onnx/graphBuilder";
import type { Value } from "../onnx/graphRecorder";

/**
 * Parameters split into row blocks, by name: the rows of each block in order. The webgpu engine splits a
 * parameter larger than one GPU buffer so (runtime/modelState.ts): each block is a graph input of its own,
 * `<name>#<k>`, with its own gradient output.
 */
export type RowBlocks = ReadonlyMap<string, readonly number[]>;

export function blockName(name: string, k: number): string {
  return `${name}#${k}`;
}

/** A parameter's row blocks in order, or the parameter itself as one block. */
export function blocksOf(params: Map<string, Value>, name: string): Value[] {
  const whole = params.get(name);
  if (whole) return [whole];
  const parts: Value[] = [];
  for (let k = 0; params.has(blockName(name, k)); k++) parts.push(params.get(blockName(name, k))!);
  if (parts.length === 0) throw new Error(`no parameter ${name}`);
  return parts;
}

/**
 * Where int32 ids fall in rows start … start+n−1 of a table: `inside` (bool, the ids' shape), and `index`, the id's
 * row within them where inside and 0 elsewhere (so a Gather or a scatter stays in range; the caller masks).
 * int32, not int64: the WebGPU provider has no int64 Sub, comparisons or Where (they would run on the CPU).
 */
export function rowsWithin(b: GraphBuilder, ids: Value, start: number, n: number): { inside: Value; index: Value } {
  if (ids.dtype !== "int32") throw new Error(`rowsWithin takes int32 ids, not ${ids.dtype}`);
  const local = b.emit1("Sub", [ids, b.int32Scalar(start)], "int32", ids.shape);
  const inside = b.emit1("And", [b.compare("GreaterOrEqual", local, b.int32Scalar(0)), b.compare("Less", local, b.int32Scalar(n))], "bool", ids.shape);
  return { inside, index: b.emit1("Where", [inside, local, b.int32Scalar(0)], "int32", ids.shape) };
}

/**
 * Rows of a table in row blocks at integer ids [...]: each block's rows at its ids (0 outside it) times a 0/1
 * mask of the ids it holds, summed. Differentiable through Gather and Mul, so each block gets its own gradient.
 */
export function blockedGather(b: GraphBuilder, blocks: Value[], ids: Value): Value {
  if (blocks.length === 1) return b.gather(blocks[0]!, ids);
  const ids32 = b.int32(ids);
  let start = 0;
  let sum: Value | null = null;
  for (const block of blocks) {
    const n = block.shape[0] as number;
    const { inside, index } = rowsWithin(b, ids32, start, n);
    const mask = b.unsqueeze(b.cast(inside, block.dtype), [ids32.rank]);
    const rows = b.mul(b.gather(block, index), mask);
    sum = sum ? b.add(sum, rows) : rows;
    start += n;
  }
  return sum!;
}
