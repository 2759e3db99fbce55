/**
 * How the output projection takes a vocabulary: whole, or in chunks of rows (the token log-probabilities and their
 * gradients, llamaOps.projectedTokenLogProbs). A model's concern, not the graph compiler's.
 */

/**
 * Rows of the output projection per chunk when the token log-probabilities and their gradients work through a
 * large vocabulary piecewise: a [B*T, 16384] float32 chunk is 84 MB at 1,280 tokens, where Qwen's whole
 * [B*T, 151,936] is 0.78 GB. The price is a second product per chunk in the backward pass (the chunk's logits
 * are recomputed, not kept).
 */
export const VOCAB_CHUNK_ROWS = 16384;

/**
 * Vocabularies up to this many rows are handled in one piece: their logits are kept for the backward pass, as
 * PyTorch keeps them, instead of recomputed. At SmolLM2's 49,152 the recomputation and the chunks' slices and
 * joins took about 7% of an SFT step on one thread (profile of 8 × 128 tokens at 135M parameters).
 */
export const WHOLE_VOCABULARY_ROWS = 65536;

/** Rows per chunk for a vocabulary of V rows: all of them up to WHOLE_VOCABULARY_ROWS, else VOCAB_CHUNK_ROWS. */
export function vocabularyChunkRows(V: number): number {
  return V <= WHOLE_VOCABULARY_ROWS ? V : VOCAB_CHUNK_ROWS;
}

/** V rows in ⌈V / maxRows⌉ chunks of near-equal size (Qwen's 151,936: ten of 15,194 or 15,190). */
export function vocabularyChunks(V: number, maxRows: number): Array<{ start: number; size: number }> {
  if (!(maxRows >= 1)) throw new Error(`chunk rows ${maxRows} must be at least 1`);
  const count = Math.max(1, Math.ceil(V / maxRows));
  const size = Math.ceil(V / count);
  const chunks: Array<{ start: number; size: number }> = [];
  for (let start = 0; start < V; start += size) chunks.push({ start, size: Math.min(size, V - start) });
  return chunks;
}
