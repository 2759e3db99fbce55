import { parseArgs, type ParseArgsConfig } from "node:util";

/** A user mistake on the command line: printed as one line, exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parse(argv: string[], options: Options, usage: string): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
    if (values["help"]) {
      process.stdout.write(usage.trim() + "\n");
      process.exit(0);
    }
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

export function intOption(values: Record<string, string | boolean | undefined>, name: string, fallback: number, min = 0): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== "string" || !Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} must be a whole number of at least ${min}, not ${JSON.stringify(raw)}`);
  }
  return n;
}
