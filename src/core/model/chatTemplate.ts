import { Environment, Interpreter, Template, tokenize } from "@huggingface/jinja";

/**
 * A model folder's chat template, rendered with limits. The template is Jinja from the internet, run by
 * @huggingface/jinja (no Python): sandbox escapes already fail there, but nothing bounds what a template may
 * spend. A loop of 1e5 × 1e5 hung a round, `range(1e9)` grew one array until V8 aborted the worker (a crash
 * that recurred on every resume), 5 MB of literal text made every prompt 5 MB. So here:
 *
 * - the source is at most `sourceChars`; every render has a deadline (`renderMs`, checked inside the
 *   interpreter, so a loop cannot outrun it) and a cap on its output (`outputChars` plus twice the messages'
 *   own characters, since a template writes the messages);
 * - no one value (text, list, dict) grows past `valueUnits`, and one render builds at most `builtUnits` of new
 *   text and lists in all, which bounds memory while a loop runs up to the deadline (sizes are in units close to
 *   characters: a character is 1, a number or a list slot 8);
 * - `range()` makes at most `rangeItems` numbers, and the few built-ins that can multiply a size in one step
 *   (`replace`, `join` with a separator, `indent` with a width, `tojson` with an indent) are sized before they
 *   run, since no check after them could stop the allocation.
 *
 * Real templates are far inside these: Qwen3's and Llama 3's render a question in well under a millisecond
 * (tens of ms on a slow machine's first render) to a few hundred characters, from a few KB of source.
 * A refusal is a ChatTemplateError naming the template's file and, when it can be found, the template line;
 * it says what to do (fix the template or use the plain prompt format), since running again cannot help.
 */
export const CHAT_TEMPLATE_LIMITS = {
  sourceChars: 200_000,
  renderMs: 2_000,
  outputChars: 100_000,
  valueUnits: 1_000_000,
  builtUnits: 50_000_000,
  rangeItems: 10_000,
} as const;

export type ChatTemplateLimits = { readonly [K in keyof typeof CHAT_TEMPLATE_LIMITS]: number };

/** A chat template that cannot be used, with the file (and line) to fix; running again cannot help. */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChatTemplateError";
  }
}

/** What a refusal tells the person to do. */
const CHAT_TEMPLATE_FIX = 'fix or remove the chat template, or set model.promptFormat to "plain"';

export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
}

/**
 * How errors name a template: its file in the model folder, e.g. `models/qwen/tokenizer_config.json
 * chat_template` or `models/qwen/chat_template.jinja`. `dir` undefined: the file alone.
 */
export function chatTemplateLabel(dir: string | undefined, file: string): string {
  const path = dir === undefined ? file : `${dir.replace(/\/+$/, "")}/${file}`;
  return file.endsWith(".jinja") ? path : `${path} chat_template`;
}

// The AST and runtime values of @huggingface/jinja (0.5.11, pinned) are not exported as types: these are the
// parts read here, by their `type` tags.
type JinjaNode = NonNullable<Parameters<Interpreter["evaluate"]>[0]>;
type Value = ReturnType<Interpreter["evaluate"]>;
interface IdentifierNode { type: "Identifier"; value: string }
interface CallNode { type: "CallExpression"; callee: JinjaNode; args: JinjaNode[] }
interface MemberNode { type: "MemberExpression"; object: JinjaNode; property: JinjaNode; computed: boolean }
interface FilterExpressionNode { type: "FilterExpression"; operand: JinjaNode; filter: JinjaNode }
interface FilterStatementNode { type: "FilterStatement"; body: JinjaNode[]; filter: JinjaNode }
interface KeywordArgumentNode { type: "KeywordArgumentExpression"; key: IdentifierNode; value: JinjaNode }
interface SpreadNode { type: "SpreadExpression" | "KeywordSpreadExpression"; argument: JinjaNode }

/** Σ (length of a run of blank space)², as the library's quadratic pass spends it: about 0.1 s. */
const MAX_BLANK_SQUARED = 5_000 ** 2;

/** The template went over a limit or refused the conversation; the message is the whole reason. */
class Refusal extends Error {}

/** The built-ins whose result can be a multiple of their inputs' size. */
const AMPLIFIERS = new Set(["replace", "join", "indent", "tojson"]);

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");

/** A chat template compiled once and rendered many times, each render within the limits. */
export class ChatTemplate {
  private readonly parsed: Template["parsed"];
  /** The nodes a template's lines are made of (its tags and text), for naming the line of an error. */
  private readonly elements = new Set<JinjaNode>();
  private tagLines: Map<JinjaNode, { line: number; tag: string }> | null = null;

  constructor(readonly source: string, readonly label: string, private readonly specialTokens: Readonly<Record<string, string>>, readonly limits: ChatTemplateLimits = CHAT_TEMPLATE_LIMITS) {
    if (source.length > limits.sourceChars) {
      throw new ChatTemplateError(`${label}: the template is ${fmt(source.length)} characters, over the limit of ${fmt(limits.sourceChars)} (a chat template is a few KB); ${CHAT_TEMPLATE_FIX}`);
    }
    // The library's first pass over a source (a regular expression for {% generation %} tags) takes time
    // growing with the square of each run of blank space: 60,000 newlines in a row took 14 s, out of reach of
    // the render deadline. Real templates indent by a few spaces.
    let blank = 0;
    let longest = 0;
    for (const run of source.match(/\s{64,}/g) ?? []) {
      blank += run.length ** 2;
      longest = Math.max(longest, run.length);
    }
    if (blank > MAX_BLANK_SQUARED) {
      throw new ChatTemplateError(`${label}: holds runs of blank space too long for the template library to read in time (${fmt(longest)} spaces or line breaks in a row); ${CHAT_TEMPLATE_FIX}`);
    }
    try {
      this.parsed = new Template(source).parsed;
    } catch (e) {
      const message = errorMessage(e);
      const line = parseErrorLine(source, message);
      throw new ChatTemplateError(`${label}${line === null ? "" : `, line ${line}`}: does not parse (${message}); ${CHAT_TEMPLATE_FIX}`);
    }
    collectElements(this.parsed.body, this.elements);
  }

  /** The template rendered for a conversation, as transformers' apply_chat_template writes it (no tools). */
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    const contentChars = messages.reduce((n, m) => n + m.content.length, 0);
    const outputLimit = this.limits.outputChars + 2 * contentChars;
    const env = new Environment();
    const globals: Record<string, unknown> = {
      false: false, true: true, none: null, False: false, True: true, None: null,
      raise_exception: (message: unknown) => {
        throw new Refusal(`refused the conversation: ${String(message)}`);
      },
      range: (start: unknown, stop?: unknown, step?: unknown) => boundedRange(start, stop, step, this.limits.rangeItems),
      strftime_now: (format: unknown) => strftimePinned(String(format)),
      ...this.specialTokens,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: addGenerationPrompt,
      enable_thinking: false,
    };
    for (const [name, value] of Object.entries(globals)) env.set(name, value);
    const interpreter = new BoundedInterpreter(env, this.limits, Math.max(outputLimit, this.limits.valueUnits), this.elements);
    let out: Value;
    try {
      out = interpreter.run(this.parsed);
    } catch (e) {
      throw this.failure(e, typeof e === "object" && e !== null ? interpreter.failedAt.get(e) : undefined);
    }
    if (out.type !== "StringValue") throw new ChatTemplateError(`${this.label}: rendered no text; ${CHAT_TEMPLATE_FIX}`);
    const text = out.value as string;
    if (text.length > outputLimit) {
      throw new ChatTemplateError(`${this.label}: rendered ${fmt(text.length)} characters for one question, over the limit of ${fmt(outputLimit)}; ${CHAT_TEMPLATE_FIX}`);
    }
    return text;
  }

  private failure(e: unknown, at: JinjaNode | undefined): ChatTemplateError {
    const where = at === undefined ? null : this.lineOf(at);
    const label = `${this.label}${where === null ? "" : `, line ${where.line} (${where.tag})`}`;
    let why: string;
    if (e instanceof Refusal) why = e.message;
    else if (e instanceof RangeError && /call stack/i.test(e.message)) why = "recursion too deep (a macro that calls itself?)";
    else if (e instanceof RangeError && /invalid (string|array) length/i.test(e.message)) why = "built a text or list too long to hold in memory (a loop too long?)";
    // The library ends loops with exceptions of its own, which have no message when they escape a loop.
    else why = errorMessage(e) || "stopped with no message (a {% break %} or {% continue %} outside a loop?)";
    return new ChatTemplateError(`${label}: ${why}; ${CHAT_TEMPLATE_FIX}`);
  }

  /** The template line of a node (one of its tags), found on error only. */
  private lineOf(node: JinjaNode): { line: number; tag: string } | null {
    this.tagLines ??= tagLines(this.source, this.parsed.body);
    return this.tagLines.get(node) ?? null;
  }
}

/**
 * The interpreter with the limits: every node evaluated goes through `evaluate`, which checks the clock, sizes
 * what the node made, and for the amplifying built-ins evaluates the inputs first (once: the base interpreter
 * is handed them back) to size the result before it exists.
 */
class BoundedInterpreter extends Interpreter {
  /** The innermost template element that was running when an error went through, by error. */
  readonly failedAt = new WeakMap<object, JinjaNode>();
  private readonly deadline: number;
  private untilClock = 0;
  private built = 0;
  /** Inputs already evaluated for the node now evaluating, handed back instead of evaluated again. */
  private ready: Map<JinjaNode, Value> | null = null;
  private readonly sizes = new WeakMap<object, number>();

  constructor(env: Environment, private readonly limits: ChatTemplateLimits, private readonly valueLimit: number, private readonly elements: ReadonlySet<JinjaNode>) {
    super(env);
    this.deadline = performance.now() + limits.renderMs;
  }

  override evaluate(node: JinjaNode | undefined, env: Environment): Value {
    if (node === undefined) return super.evaluate(node, env);
    if (this.ready !== null) {
      const v = this.ready.get(node);
      if (v !== undefined) {
        this.ready.delete(node);
        return v;
      }
    }
    try {
      // The clock every few nodes, and at every loop: a loop over a long list spends its time between nodes.
      if (--this.untilClock <= 0 || node.type === "For") {
        this.untilClock = 16;
        if (performance.now() > this.deadline) throw new Refusal(`rendering one question took over ${this.limits.renderMs / 1000} s (a loop too long?)`);
      }
      return this.sized(node, this.guarded(node, env));
    } catch (e) {
      // The innermost element (tag or text) the error went through names its line.
      if (typeof e === "object" && e !== null && !this.failedAt.has(e) && this.elements.has(node)) this.failedAt.set(e, node);
      throw e;
    }
  }

  private guarded(node: JinjaNode, env: Environment): Value {
    switch (node.type) {
      case "FilterExpression": {
        const n = node as unknown as FilterExpressionNode;
        const name = calledName(n.filter);
        if (name === null || !AMPLIFIERS.has(name)) break;
        return this.withInputs(node, env, () => {
          const operand = this.input(n.operand, env);
          const [args, kwargs] = this.inputArgs((n.filter as unknown as CallNode).args, env);
          this.checkAmplifier(name, operand, args, kwargs);
        });
      }
      case "FilterStatement": {
        const n = node as unknown as FilterStatementNode;
        const name = calledName(n.filter);
        if (name === null || !AMPLIFIERS.has(name)) break;
        return this.withInputs(node, env, () => {
          // The body as the base interpreter's block makes it: each statement's text, none and undefined left out.
          let text = "";
          for (const s of n.body) {
            const v = this.input(s, env);
            if (v.type !== "NullValue" && v.type !== "UndefinedValue") text += v.toString();
          }
          const [args, kwargs] = this.inputArgs((n.filter as unknown as CallNode).args, env);
          this.checkAmplifier(name, new Environment().set("body", text), args, kwargs);
        });
      }
      case "CallExpression": {
        const n = node as unknown as CallNode;
        if (n.callee.type !== "MemberExpression") break;
        const member = n.callee as unknown as MemberNode;
        if (member.computed || member.property.type !== "Identifier" || (member.property as unknown as IdentifierNode).value !== "replace") break;
        // The base interpreter evaluates the arguments before the callee; so does this.
        return this.withInputs(node, env, () => {
          const [args, kwargs] = this.inputArgs(n.args, env);
          const object = this.input(member.object, env);
          if (object.type === "StringValue") this.checkAmplifier("replace", object, args, kwargs);
        });
      }
    }
    return super.evaluate(node, env);
  }

  /**
   * Evaluates a node whose inputs `prepare` evaluates (through `input`) and checks first; the base interpreter
   * then gets those values back instead of evaluating them again, so each input runs once, in its order.
   */
  private withInputs(node: JinjaNode, env: Environment, prepare: () => void): Value {
    const outer = this.ready;
    this.ready = null;
    const inputs = new Map<JinjaNode, Value>();
    this.collecting.push(inputs);
    try {
      prepare();
    } finally {
      this.collecting.pop();
      this.ready = outer;
    }
    this.ready = inputs;
    try {
      return super.evaluate(node, env);
    } finally {
      this.ready = outer;
    }
  }

  private readonly collecting: Map<JinjaNode, Value>[] = [];

  private input(node: JinjaNode, env: Environment): Value {
    const v = this.evaluate(node, env);
    this.collecting.at(-1)?.set(node, v);
    return v;
  }

  /** Arguments as the base interpreter evaluates them: positional (and spread) first, then keyword. */
  private inputArgs(args: readonly JinjaNode[], env: Environment): [Value[], Map<string, Value>] {
    const positional: Value[] = [];
    const keyword = new Map<string, Value>();
    for (const a of args) {
      if (a.type === "SpreadExpression") {
        const v = this.input((a as unknown as SpreadNode).argument, env);
        if (Array.isArray(v.value)) positional.push(...(v.value as Value[]));
      } else if (a.type !== "KeywordArgumentExpression" && a.type !== "KeywordSpreadExpression") {
        positional.push(this.input(a, env));
      }
    }
    for (const a of args) {
      if (a.type === "KeywordArgumentExpression") {
        const k = a as unknown as KeywordArgumentNode;
        keyword.set(k.key.value, this.input(k.value, env));
      } else if (a.type === "KeywordSpreadExpression") {
        const v = this.input((a as unknown as SpreadNode).argument, env);
        if (v.value instanceof Map) for (const [key, item] of v.value as Map<string, Value>) keyword.set(key, item);
      }
    }
    return [positional, keyword];
  }

  /** Refuses an amplifying built-in whose result would be over the value limit, before it runs. */
  private checkAmplifier(name: string, operand: Value, args: readonly Value[], kwargs: ReadonlyMap<string, Value>): void {
    const arg = (i: number, key: string): Value | undefined => args[i] ?? kwargs.get(key);
    const text = operand.type === "StringValue" ? (operand.value as string) : null;
    let size = 0;
    if (name === "replace" && text !== null) {
      const from = arg(0, "old");
      const to = arg(1, "new");
      if (from?.type !== "StringValue" || to?.type !== "StringValue") return;
      const [a, b] = [from.value as string, to.value as string];
      if (b.length <= a.length) return;
      let n = a === "" ? text.length + 1 : occurrences(text, a);
      const count = arg(2, "count");
      if (count?.type === "IntegerValue" && (count.value as number) >= 0) n = Math.min(n, count.value as number);
      size = text.length + n * (b.length - a.length);
    } else if (name === "join") {
      const sep = arg(0, "separator");
      if (sep?.type !== "StringValue") return;
      const items = text !== null ? text.length : Array.isArray(operand.value) ? (operand.value as Value[]).length : 0;
      size = this.size(operand, 0) + Math.max(0, items - 1) * (sep.value as string).length;
    } else if (name === "indent" && text !== null) {
      const width = arg(0, "width");
      if (width?.type !== "IntegerValue") return;
      size = text.length + (occurrences(text, "\n") + 1) * Math.max(0, width.value as number);
    } else if (name === "tojson") {
      const indent = kwargs.get("indent");
      if (indent?.type !== "IntegerValue") return;
      size = jsonSize(operand, Math.max(0, indent.value as number), 0, this.valueLimit + 1);
    }
    if (size > this.valueLimit) throw new Refusal(`${name}() would make ${fmt(size)} characters, over the limit of ${fmt(this.valueLimit)}`);
  }

  /** Checks what a node made: one value's size, and all that this render has built. */
  private sized(node: JinjaNode, value: Value): Value {
    const t = value.type;
    if (t !== "StringValue" && t !== "ArrayValue" && t !== "TupleValue" && t !== "ObjectValue" && t !== "KeywordArgumentsValue" && t !== "NamespaceValue") return value;
    const size = this.size(value, 0);
    if (size === Infinity) throw new Refusal("made a value nested too deep (a namespace holding itself?)");
    if (size > this.valueLimit) throw new Refusal(`made a value of about ${fmt(size)} characters, over the limit of ${fmt(this.valueLimit)}`);
    // Looking a value up makes nothing new; everything else that returns text or a list built it.
    if (node.type !== "Identifier" && node.type !== "MemberExpression") this.build(size);
    return value;
  }

  private build(units: number): void {
    this.built += units;
    if (this.built > this.limits.builtUnits) throw new Refusal(`built over ${fmt(this.limits.builtUnits)} characters of text and lists for one question (a loop too long?)`);
  }

  /**
   * A value's size in units close to characters (a character 1, a number or a list slot 8), cached for lists
   * and dicts (immutable in Jinja; a namespace is not, and is sized again). Stops counting past the limit.
   */
  private size(v: Value, depth: number): number {
    switch (v.type) {
      case "StringValue":
        return (v.value as string).length;
      case "ArrayValue":
      case "TupleValue":
      case "ObjectValue":
      case "KeywordArgumentsValue":
      case "NamespaceValue": {
        const cached = this.sizes.get(v);
        if (cached !== undefined) return cached;
        // Only a namespace can hold itself; so deep a value is refused either way.
        if (depth > 64) return Infinity;
        let size = 8;
        if (Array.isArray(v.value)) {
          for (const item of v.value as Value[]) {
            size += 8 + this.size(item, depth + 1);
            if (size > this.valueLimit) return size;
          }
        } else {
          for (const [key, item] of v.value as Map<string, Value>) {
            size += 8 + key.length + this.size(item, depth + 1);
            if (size > this.valueLimit) return size;
          }
        }
        if (v.type !== "NamespaceValue") this.sizes.set(v, size);
        return size;
      }
      default:
        return 8;
    }
  }
}

/** The name a filter calls with arguments (`indent(2)`), or null for a bare filter or another form. */
function calledName(filter: JinjaNode): string | null {
  if (filter.type !== "CallExpression") return null;
  const callee = (filter as unknown as CallNode).callee;
  return callee.type === "Identifier" ? (callee as unknown as IdentifierNode).value : null;
}

function occurrences(text: string, part: string): number {
  let n = 0;
  for (let i = text.indexOf(part); i !== -1; i = text.indexOf(part, i + part.length)) n++;
  return n;
}

/**
 * About tojson's length with an indent: every item on its own line, indented by its depth, with 24 characters
 * for its key and punctuation (a longer key is counted by the value limit). Stops counting past `stop`.
 */
function jsonSize(v: Value, indent: number, depth: number, stop: number): number {
  if (depth > 64) return Infinity;
  if (v.type === "StringValue") return (v.value as string).length + 2;
  const items = Array.isArray(v.value) ? (v.value as Value[]) : v.value instanceof Map ? [...(v.value as Map<string, Value>).values()] : null;
  if (items === null) return 8;
  let size = 2 + depth * indent;
  for (const item of items) {
    size += 2 + (depth + 1) * indent + 24 + jsonSize(item, indent, depth + 1, stop - size);
    if (size > stop) return size;
  }
  return size;
}

/** Python's range(), making at most `max` numbers. */
function boundedRange(start: unknown, stop: unknown, step: unknown, max: number): number[] {
  const args = [start, stop, step].filter((x) => x !== undefined);
  let [a, b, s] = [Number(start), Number(stop), step === undefined ? 1 : Number(step)];
  if (stop === undefined) [a, b] = [0, a];
  if (s === 0) throw new Refusal("range() step must not be zero");
  const span = Math.ceil((b - a) / s);
  const n = Number.isNaN(span) ? 0 : Math.max(0, span);
  if (!(n <= max)) throw new Refusal(`range(${args.map(String).join(", ")}) has ${Number.isFinite(n) ? fmt(n) : "endless"} items, over the limit of ${fmt(max)}`);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(a + i * s);
  return out;
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** strftime of 26 Jul 2024 00:00 (Llama 3.1–3.3's fallback date), in English whatever the locale. */
function strftimePinned(format: string): string {
  const [year, month, day] = [2024, 7, 26];
  const name = MONTHS[month - 1] as string;
  const parts: Record<string, string> = { "%Y": String(year), "%m": String(month).padStart(2, "0"), "%d": String(day).padStart(2, "0"), "%b": name.slice(0, 3), "%B": name, "%H": "00", "%M": "00", "%%": "%" };
  return format.replace(/%[YmdbBHM%]/g, (t) => parts[t] as string);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---- Lines. @huggingface/jinja keeps no positions, so they are found again, and only for an error. ----

/**
 * The line where parsing fails with this message: the first tag such that the source up to its end fails so
 * (cut inside a tag, a source fails in other ways). None for a block left open: that fails at the end.
 */
function parseErrorLine(source: string, message: string): number | null {
  if (/end of input|of undefined/i.test(message)) return null;
  const tags = scanTags(source);
  const failsSo = (k: number): boolean => {
    try {
      new Template(source.slice(0, tags[k]!.end));
      return false;
    } catch (e) {
      return errorMessage(e) === message;
    }
  };
  let [lo, hi] = [-1, tags.length];
  while (lo + 1 < hi) {
    const mid = (lo + hi) >>> 1;
    if (failsSo(mid)) hi = mid;
    else lo = mid;
  }
  return hi < tags.length ? lineAt(source, tags[hi]!.start) : null;
}

function lineAt(source: string, index: number): number {
  return occurrences(source.slice(0, index), "\n") + 1;
}

/** The statements and texts of every block, in source order: what a template's tags and text become. */
const BLOCKS = ["body", "alternate", "defaultBlock"] as const;

function collectElements(body: readonly JinjaNode[], out: Set<JinjaNode>): void {
  for (const node of body) {
    out.add(node);
    const holder = node as unknown as Partial<Record<(typeof BLOCKS)[number], JinjaNode[]>>;
    for (const key of BLOCKS) {
      const inner = holder[key];
      if (Array.isArray(inner)) collectElements(inner, out);
    }
  }
}

/** Statement keywords that open an element (a node of a block); the others (else, end…) close or split one. */
const OPENING = new Set(["set", "if", "elif", "for", "macro", "call", "filter", "break", "continue"]);

/**
 * Each tag element's line and text: the elements in source order are matched with the tags found by scanning
 * the source, checked against the library's own tokens; null-free only when everything lines up.
 */
function tagLines(source: string, body: readonly JinjaNode[]): Map<JinjaNode, { line: number; tag: string }> {
  const out = new Map<JinjaNode, { line: number; tag: string }>();
  const elements = new Set<JinjaNode>();
  collectElements(body, elements);
  const tags = scanTags(source);
  let tokens;
  try {
    tokens = tokenize(source, { lstrip_blocks: true, trim_blocks: true });
  } catch {
    return out;
  }
  // Which token starts each element: a text, a comment, an expression tag, an opening statement tag.
  const starts: Array<number | "text"> = [];
  let tagIndex = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === "Text") starts.push("text");
    else if (t.type === "Comment" || t.type === "OpenExpression" || t.type === "OpenStatement") {
      const tag = tags[tagIndex];
      const kind = t.type === "Comment" ? "{#" : t.type === "OpenExpression" ? "{{" : "{%";
      if (tag?.kind !== kind) return out;
      if (kind !== "{%" || OPENING.has(tokens[i + 1]?.value ?? "")) starts.push(tagIndex);
      tagIndex++;
    }
  }
  if (tagIndex !== tags.length || starts.length !== elements.size) return out;
  let i = 0;
  for (const node of elements) {
    const start = starts[i++];
    if (typeof start === "number") {
      const tag = tags[start]!;
      const text = source.slice(tag.start, tag.end).replace(/\s+/g, " ");
      out.set(node, { line: lineAt(source, tag.start), tag: text.length > 60 ? `${text.slice(0, 57)}...` : text });
    }
  }
  return out;
}

interface Tag { kind: "{{" | "{%" | "{#"; start: number; end: number }

const OPEN_TAG = /\{[{%#]/g;

/** The tags of a source, as the library's lexer splits it (strings inside tags skipped; generation tags left out). */
function scanTags(source: string): Tag[] {
  const tags: Tag[] = [];
  let i = 0;
  while (i < source.length) {
    OPEN_TAG.lastIndex = i;
    const found = OPEN_TAG.exec(source);
    if (found === null) break;
    const start = found.index;
    const kind = source.slice(start, start + 2) as Tag["kind"];
    let j = start + 2;
    if (kind === "{#") {
      const close = source.indexOf("#}", j);
      j = close === -1 ? source.length : close + 2;
    } else {
      let depth = 0;
      while (j < source.length) {
        const c = source[j]!;
        if (c === "'" || c === '"') {
          j++;
          while (j < source.length && source[j] !== c) j += source[j] === "\\" ? 2 : 1;
          j++;
        } else if (source.startsWith("%}", j)) {
          j += 2;
          break;
        } else if (kind === "{{" && depth === 0 && source.startsWith("}}", j)) {
          j += 2;
          break;
        } else {
          if (c === "{") depth++;
          else if (c === "}") depth = Math.max(0, depth - 1);
          j++;
        }
      }
    }
    if (!(kind === "{%" && /^\{%[-+]?\s*(end)?generation\s*[-+]?%\}$/.test(source.slice(start, j)))) tags.push({ kind, start, end: j });
    i = j;
  }
  return tags;
}

// The probe that checks a template's shape: a GSM8K-like question and rationale.
const PROBE_QUESTION = "Tom has 3 apples and buys 2 more. How many apples does he have?";
const PROBE_ANSWER = "He has 3 + 2 = <<3+2=5>>5 apples.\n#### 5";

/**
 * Renders the probe question alone (the prompt) and with its answer, and checks the template can be trained on
 * as prompt + rationale: the conversation begins with the prompt and goes on with the answer at once. Returns
 * what the template writes after the answer (its end of turn first). Throws ChatTemplateError.
 */
export function probeChatTemplate(template: ChatTemplate): string {
  const prompt = template.render([{ role: "user", content: PROBE_QUESTION }], true);
  const full = template.render([{ role: "user", content: PROBE_QUESTION }, { role: "assistant", content: PROBE_ANSWER }], false);
  if (!full.startsWith(prompt)) throw unusable(template, "renders a conversation that does not begin with its generation prompt");
  const rest = full.slice(prompt.length);
  if (!rest.startsWith(PROBE_ANSWER)) throw unusable(template, `writes ${JSON.stringify(rest.slice(0, Math.max(0, rest.indexOf(PROBE_ANSWER))) || rest.slice(0, 40))} between the generation prompt and the answer`);
  return rest.slice(PROBE_ANSWER.length);
}

/** A template that renders but cannot be trained on as prompt + rationale. */
export function unusable(template: ChatTemplate, why: string): ChatTemplateError {
  return new ChatTemplateError(`${template.label}: ${why}, so a rationale cannot follow the prompt token for token; set model.promptFormat to "plain"`);
}
