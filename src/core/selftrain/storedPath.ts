import { isAbsolute, relative, resolve, sep } from "node:path";

/*
 * How config.json names a file or folder (data.train, data.test, model.init): relative to the workspace when it
 * is inside it, so the workspace can move with its data; absolute when it is outside, because "../../../data"
 * breaks as soon as the workspace or the file moves and says nothing to a person reading the file.
 */

/** `file` as config.json stores it: relative inside `workspace`, absolute outside it. A relative `file` is taken as relative to the workspace already. */
export function storedPath(workspace: string, file: string): string {
  const absolute = resolve(workspace, file);
  const rel = relative(resolve(workspace), absolute);
  // Outside: "..", "../x", or another drive on Windows (relative() then gives an absolute path). "" is the workspace itself.
  const outside = rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel);
  return outside ? absolute : rel;
}

/** A stored path (either kind) as the absolute path it names. */
export function resolveStored(workspace: string, stored: string): string {
  return isAbsolute(stored) ? stored : resolve(workspace, stored);
}
