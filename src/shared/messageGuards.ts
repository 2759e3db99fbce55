/**
 * Small checks for messages that cross a process or frame boundary (host ↔ webview). A message is data from
 * another context: it is checked field by field before it is trusted, and a refusal says which field was
 * wrong, so the receiver can log why it dropped it.
 */

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

export class MessageError extends Error {}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A value as a refusal shows it: JSON, cut to 60 characters, so a 20 MB bad value is never echoed back. */
export function shown(v: unknown): string {
  const text = v === undefined ? "nothing" : (JSON.stringify(v) ?? typeof v);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/** A field reader for one message object; every getter throws MessageError naming the field. */
export class Fields {
  constructor(
    private readonly o: Record<string, unknown>,
    private readonly where: string,
  ) {}

  private fail(name: string, want: string): never {
    throw new MessageError(`${this.where}: "${name}" must be ${want}, got ${shown(this.o[name])}`);
  }

  str(name: string, opts: { empty?: boolean; max?: number } = {}): string {
    const v = this.o[name];
    if (typeof v !== "string" || (!opts.empty && v.length === 0)) this.fail(name, opts.empty ? "a string" : "a non-empty string");
    if (opts.max !== undefined && v.length > opts.max) this.fail(name, `at most ${opts.max} characters`);
    return v;
  }

  /** Absent or null reads as undefined. */
  optStr(name: string, max?: number): string | undefined {
    return this.o[name] === undefined || this.o[name] === null ? undefined : this.str(name, { empty: true, ...(max === undefined ? {} : { max }) });
  }

  int(name: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.o[name];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) this.fail(name, `an integer in [${min}, ${max}]`);
    return v;
  }

  num(name: string): number {
    const v = this.o[name];
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(name, "a finite number");
    return v;
  }

  bool(name: string): boolean {
    const v = this.o[name];
    if (typeof v !== "boolean") this.fail(name, "true or false");
    return v;
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T {
    const v = this.o[name];
    if (typeof v !== "string" || !(values as readonly string[]).includes(v)) this.fail(name, `one of ${values.join(", ")}`);
    return v as T;
  }

  record(name: string): Fields {
    const v = this.o[name];
    if (!isRecord(v)) this.fail(name, "an object");
    return new Fields(v, `${this.where}.${name}`);
  }

  array<T>(name: string, each: (v: unknown, i: number) => T): T[] {
    const v = this.o[name];
    if (!Array.isArray(v)) this.fail(name, "an array");
    return v.map(each);
  }
}

/**
 * Reads a message whose "type" picks its shape. `readers` maps each type to a reader that builds the typed
 * message from its fields (and so drops any field it does not know); anything else is refused with a reason.
 */
export function checkMessage<M extends { type: string }>(raw: unknown, surface: string, readers: { [K in M["type"]]: (f: Fields) => Extract<M, { type: K }> }): Checked<M> {
  if (!isRecord(raw)) return { ok: false, reason: `${surface}: a message must be an object, got ${raw === null ? "null" : Array.isArray(raw) ? "an array" : typeof raw}` };
  const type = raw["type"];
  if (typeof type !== "string" || !Object.hasOwn(readers, type)) {
    return { ok: false, reason: `${surface}: unknown message type ${JSON.stringify(type)?.slice(0, 40)} (known: ${Object.keys(readers).join(", ")})` };
  }
  try {
    const read = (readers as Record<string, (f: Fields) => M>)[type]!;
    return { ok: true, value: read(new Fields(raw, `${surface} "${type}"`)) };
  } catch (e) {
    if (e instanceof MessageError) return { ok: false, reason: e.message };
    throw e;
  }
}
