import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { folderInsteadOfFile } from "./fsErrors";

/**
 * Some platforms (Windows) and some file systems refuse to open or fsync a directory. The rename is then as
 * durable as that platform allows, so these errors are not worth failing a write for.
 */
const DIR_SYNC_REFUSALS = new Set(["EISDIR", "EPERM", "EINVAL", "EACCES"]);

function isRefusal(e: unknown): boolean {
  return typeof e === "object" && e !== null && DIR_SYNC_REFUSALS.has(String((e as { code?: unknown }).code));
}

/** Makes a rename or a newly created file in `dir` survive a power loss, where the platform allows it. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch (e) {
    if (!isRefusal(e)) throw e;
  } finally {
    await handle?.close();
  }
}

/** Synchronous twin of fsyncDir, for the review log whose appends are synchronous. */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch (e) {
    if (!isRefusal(e)) throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Replaces `path` so that a reader (or a crash) sees either the old content or the new one, never half a file:
 * the data goes to a sibling temporary file, is fsynced, then renamed over `path` (rename is atomic within a
 * folder), and the folder is fsynced so the rename itself is durable.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  // pid + random: two processes (host and engine) or two writes in one process never share a temporary file.
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  try {
    const handle = await open(tmp, "w");
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw folderInsteadOfFile(e, path);
  }
  await fsyncDir(dirname(path));
}

/** Pretty JSON (two spaces) with a final newline, so the file reads well and diffs cleanly. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new TypeError(`${path}: value cannot be written as JSON`);
  await writeFileAtomic(path, text + "\n");
}
