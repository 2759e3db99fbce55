/** Plain-text formats shared by the CLI, the extension host and the webviews, so each number reads the same everywhere. */

/** A duration or ETA: "42 s", "3 min 20 s", "2 h 5 min". */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * The engine and where it runs, as one parenthesis: "onnxruntime (cpu, 2 threads)". An engine names its device with
 * its details in brackets ("cpu (2 threads)", "wasm (SIMD, 2 threads)"), which put inside another gave "(cpu (2 threads))".
 */
export function formatEngine(engine: string, device: string | null): string {
  if (!device) return engine;
  const m = /^(.*?) \((.*)\)$/.exec(device);
  return `${engine} (${m ? `${m[1]}, ${m[2]}` : device})`;
}
