/**
 * The calculator behind `<<expr=result>>` annotations and calculator-aided decoding.
 *
 * A small recursive-descent parser over a closed grammar; model output is never handed to a language's
 * `eval` or `Function`:
 *   expr   := term (('+' | '-') term)*
 *   term   := unary (('*' | '/' | '//') unary)*        '//' is floor division, as in GSM8K's own calculator
 *   unary  := ('-' | '+') unary | atom
 *   atom   := number | '(' expr ')'
 *   number := digits with optional ',' thousands groups and optional '.' fraction, or '.' digits
 * Spaces are allowed between tokens. Anything else is rejected.
 */

/** Longer inputs are rejected outright: the parser must stay cheap inside a decoding loop. */
export const MAX_EXPRESSION_LENGTH = 256;
/** Deeper nesting is rejected, so recursion stays bounded whatever the input. */
const MAX_DEPTH = 64;

export type CalcResult = { ok: true; value: number } | { ok: false; reason: string };

class CalcError extends Error {}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly src: string) {}

  parse(): number {
    const value = this.expr();
    this.skipSpaces();
    if (this.pos !== this.src.length) {
      throw new CalcError(`unexpected '${this.src[this.pos]}' at position ${this.pos + 1}`);
    }
    return value;
  }

  private skipSpaces(): void {
    while (this.src[this.pos] === " ") this.pos++;
  }

  private expr(): number {
    let value = this.term();
    for (;;) {
      this.skipSpaces();
      const op = this.src[this.pos];
      if (op !== "+" && op !== "-") return value;
      this.pos++;
      const rhs = this.term();
      value = op === "+" ? value + rhs : value - rhs;
    }
  }

  private term(): number {
    let value = this.unary();
    for (;;) {
      this.skipSpaces();
      const op = this.src[this.pos];
      if (op !== "*" && op !== "/") return value;
      this.pos++;
      // GSM8K's annotations were computed in Python: '//' floors toward −∞ (two of its training rationales use it).
      const floor = op === "/" && this.src[this.pos] === "/";
      if (floor) this.pos++;
      const rhs = this.unary();
      if (op === "*") {
        value = value * rhs;
      } else {
        if (rhs === 0) throw new CalcError("division by zero");
        value = floor ? Math.floor(value / rhs) : value / rhs;
      }
    }
  }

  private unary(): number {
    this.skipSpaces();
    const c = this.src[this.pos];
    if (c === "-" || c === "+") {
      this.pos++;
      this.enter();
      const v = this.unary();
      this.depth--;
      return c === "-" ? -v : v;
    }
    return this.atom();
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) throw new CalcError("expression nested too deeply");
  }

  private atom(): number {
    this.skipSpaces();
    const c = this.src[this.pos];
    if (c === "(") {
      this.pos++;
      this.enter();
      const v = this.expr();
      this.depth--;
      this.skipSpaces();
      if (this.src[this.pos] !== ")") throw new CalcError(`missing ')' at position ${this.pos + 1}`);
      this.pos++;
      return v;
    }
    return this.number();
  }

  private number(): number {
    const start = this.pos;
    let digits = "";
    while (this.pos < this.src.length) {
      const ch = this.src[this.pos] as string;
      if (ch >= "0" && ch <= "9") {
        digits += ch;
        this.pos++;
      } else if (ch === "," && digits.length > 0 && isDigitRun(this.src, this.pos + 1, 3)) {
        // A thousands separator: only when exactly three digits follow, so "1,000" reads as 1000.
        this.pos++;
      } else {
        break;
      }
    }
    if (this.src[this.pos] === ".") {
      this.pos++;
      let frac = "";
      while (this.pos < this.src.length && /[0-9]/.test(this.src[this.pos] as string)) {
        frac += this.src[this.pos];
        this.pos++;
      }
      if (digits.length === 0 && frac.length === 0) throw new CalcError(`lone '.' at position ${start + 1}`);
      digits = `${digits || "0"}.${frac || "0"}`;
    }
    if (digits.length === 0) {
      const found = this.pos < this.src.length ? `'${this.src[this.pos]}'` : "end of input";
      throw new CalcError(`expected a number at position ${this.pos + 1}, found ${found}`);
    }
    return Number(digits);
  }
}

function isDigitRun(s: string, at: number, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const ch = s[at + i];
    if (ch === undefined || ch < "0" || ch > "9") return false;
  }
  const after = s[at + n];
  return after === undefined || after < "0" || after > "9";
}

/** Evaluates an arithmetic expression; never throws. */
export function evaluate(expression: string): CalcResult {
  if (expression.length > MAX_EXPRESSION_LENGTH) {
    return { ok: false, reason: `expression longer than ${MAX_EXPRESSION_LENGTH} characters` };
  }
  if (expression.trim().length === 0) return { ok: false, reason: "empty expression" };
  try {
    const value = new Parser(expression).parse();
    if (!Number.isFinite(value)) return { ok: false, reason: "result is not a finite number" };
    return { ok: true, value };
  } catch (e) {
    if (e instanceof CalcError) return { ok: false, reason: e.message };
    throw e;
  }
}

/**
 * The result text the calculator writes: an integer when within 1e-4 of one, otherwise rounded to two
 * decimals (trailing zeros dropped), as in the paper's calculator.
 */
export function formatResult(value: number): string {
  const nearest = Math.round(value);
  if (Math.abs(value - nearest) < 1e-4) return String(nearest === 0 ? 0 : nearest);
  const rounded = Math.round(value * 100) / 100;
  return String(rounded);
}

/** Characters an expression inside `<<…=` may hold during decoding. */
export const EXPRESSION_CHARS = /^[0-9+\-*/(). ,]*$/;
