/**
 * A host copy of the weights set aside on disk while nothing reads it. While the CPU decodes, ONNX Runtime holds
 * its own pre-packed copy of every weight (ortDecoding.ts) and the engine's float32 arrays sit idle beside it:
 * for SmolLM2-135M 0.50 GiB of 1.6 GiB, for a 1.5B model 6 GB. Parking writes them to an unlinked temporary file
 * and frees them; the first reader after that (a training step, getWeights, a new decoder) reads them back.
 *
 * Freed at once, not at V8's next garbage collection: an ArrayBuffer transferred through a MessageChannel whose
 * ports are closed has its memory released when the close is processed (by the ports' "close" events), so the
 * session built next does not find the old arrays still resident.
 *
 * Parking is only worth it on a disk: where the temporary directory is memory (tmpfs, ramfs) the weights would
 * still take the machine's memory, out of this process's resident set only, and nothing is parked.
 */
import { closeSync, openSync, readSync, statfsSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageChannel } from "node:worker_threads";

/** statfs f_type of file systems that live in memory. */
const MEMORY_FILE_SYSTEMS = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

/** Weights written to a temporary file and freed; `restore` reads them back (once). */
export interface ParkedWeights {
  restore(): Map<string, Float32Array>;
  /** Closes the file without reading it (the weights were replaced). */
  discard(): void;
}

/** Where parked weights go, or null where the temporary directory is memory or the platform cannot unlink an open file. */
export function parkingDirectory(dir = tmpdir()): string | null {
  if (process.platform === "win32") return null;
  try {
    return MEMORY_FILE_SYSTEMS.has(statfsSync(dir).type) ? null : dir;
  } catch {
    return null;
  }
}

/**
 * Writes `arrays` to a new file in `dir` that is unlinked at once (so a killed process leaves nothing behind);
 * the caller then frees them (releaseArrays). Returns null when the file cannot be written (a full disk): the
 * weights then stay in memory.
 */
export function parkWeights(arrays: ReadonlyMap<string, Float32Array>, dir: string): ParkedWeights | null {
  const path = join(dir, `selftrain-parked-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.bin`);
  let fd: number;
  try {
    fd = openSync(path, "wx+", 0o600);
  } catch {
    return null;
  }
  const layout: Array<{ name: string; offset: number; length: number }> = [];
  try {
    unlinkSync(path);
    let offset = 0;
    for (const [name, a] of arrays) {
      const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, bytes.byteLength - done, offset + done);
      layout.push({ name, offset, length: a.length });
      offset += a.byteLength;
    }
  } catch {
    closeSync(fd);
    return null;
  }
  let open = true;
  const close = (): void => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    restore(): Map<string, Float32Array> {
      if (!open) throw new Error("parked weights were already restored or discarded");
      try {
        const out = new Map<string, Float32Array>();
        for (const { name, offset, length } of layout) {
          const a = new Float32Array(length);
          const bytes = new Uint8Array(a.buffer);
          for (let done = 0; done < bytes.byteLength; ) {
            const n = readSync(fd, bytes, done, bytes.byteLength - done, offset + done);
            if (n === 0) throw new Error(`the parked weights file ended early at ${name}`);
            done += n;
          }
          out.set(name, a);
        }
        return out;
      } finally {
        close();
      }
    },
    discard: close,
  };
}

/**
 * Frees the arrays' memory now, not when V8 next collects garbage: their buffers are detached (every view of
 * them reads as empty from here on), so they must have no other reader.
 */
export async function releaseArrays(arrays: readonly Float32Array[]): Promise<void> {
  const buffers = [...new Set(arrays.map((a) => a.buffer))].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer && b.byteLength > 0);
  const { port1, port2 } = new MessageChannel();
  const closed = Promise.all([port1, port2].map((p) => new Promise<void>((resolve) => p.once("close", () => resolve()))));
  port1.postMessage(null, buffers);
  // Closing the ports drops the queued message, which holds the buffers: their memory is freed by the time both
  // ports report "close".
  port1.close();
  port2.close();
  await closed;
}
