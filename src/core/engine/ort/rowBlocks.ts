/**
 * Parameters taken as row blocks by the graphs: the webgpu engine keeps a vocabulary table larger than one GPU
 * buffer (1 GiB) so (ortState.ts splitSlots), each block a graph input `<name>#<k>` with its own gradient. The
 * embedding lookup sums masked per-block gathers (blockedGather); the output projection takes its vocabulary
 * chunks within blocks (llamaOps projectedTokenLogProbs). No tensor of the whole table is made.
 */
import type { GraphBuilder } from "./graphBuilder";
import type { Value } from "./graphRecorder";

/**
 * Parameters split into row blocks, by name: the rows of each block in order. The webgpu engine splits a
 * parameter larger than one GPU buffer so (ortState.ts): each block is a graph input of its own,
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
 * Rows of a table in row blocks at integer ids [...]: each block's rows at its ids (clamped into it) times a 0/1
 * mask of the ids it holds, summed. Differentiable through Gather and Mul, so each block gets its own gradient.
 */
export function blockedGather(b: GraphBuilder, blocks: Value[], ids: Value): Value {
  if (blocks.length === 1) return b.gather(blocks[0]!, ids);
  const ids64 = b.cast(ids, "int64");
  let start = 0;
  let sum: Value | null = null;
  for (const block of blocks) {
    const n = block.shape[0] as number;
    const local = b.emit1("Sub", [ids64, b.intScalar(start)], "int64", ids64.shape);
    const clamped = b.minMax("Max", b.minMax("Min", local, b.intScalar(n - 1)), b.intScalar(0));
    const inside = b.emit1("And", [b.compare("GreaterOrEqual", local, b.intScalar(0)), b.compare("Less", local, b.intScalar(n))], "bool", ids64.shape);
    const mask = b.unsqueeze(b.cast(inside, block.dtype), [ids64.rank]);
    const rows = b.mul(b.gather(block, clamped), mask);
    sum = sum ? b.add(sum, rows) : rows;
    start += n;
  }
  return sum!;
}
