/** File system errors said in words that name the file and what to do about it. */

export function errorCode(e: unknown): unknown {
  return typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
}

/** A folder where a file of the run store belongs (made by hand, or by a tool that guessed wrong). */
export class FolderInsteadOfFileError extends Error {
  constructor(readonly path: string) {
    super(`${path} is a folder, not a file: remove it (or move it elsewhere), then run the command again`);
    this.name = "FolderInsteadOfFileError";
  }
}

/**
 * `e`, or, when it is EISDIR, an error naming `path`: Node's own says only "EISDIR: illegal operation on a
 * directory", which does not tell the person which of a run's many files is the folder.
 */
export function folderInsteadOfFile(e: unknown, path: string): unknown {
  return errorCode(e) === "EISDIR" ? new FolderInsteadOfFileError(path) : e;
}
