import type { TextTokenizer } from "../tokenizer/tokenizer";
import { ChatTemplate, chatTemplateLabel, probeChatTemplate, unusable } from "./chatTemplate";

/**
 * How a question and a rationale become the tokens a model reads and writes. Every stage goes through one
 * `PromptFormat` (SFT and DPO sequences, reference log-probabilities, sampling, evaluation), so a model is
 * trained on exactly the prompts it is later sampled from.
 *
 * - plain: `Question: …\nAnswer: ` after the BOS (when the tokenizer has one), the rationale, then EOS. The
 *   format of base models without a chat template and of the models this project creates.
 * - chat: the model's own chat template (tokenizer_config.json `chat_template`), rendered with
 *   @huggingface/jinja. The user message is the question alone, verbatim: the rationale's form (steps, `<<…>>`
 *   calculations, `#### answer`) is taught by the warm-up SFT on gold rationales, not by an instruction, so
 *   the prompt is the question as an instruct model would be asked it. The prompt is the template rendered
 *   with that one message and `add_generation_prompt`; the model then writes the rationale and the template's
 *   end-of-turn token (`<|im_end|>`, `<|eot_id|>`), which ends sampling and is the last trained token.
 *
 * Chat decisions, written once here:
 * - `enable_thinking: false` (Qwen3): the generation prompt then holds an empty `<think>\n\n</think>\n\n`
 *   block, exactly what the template writes before an assistant answer, and the model answers directly; the
 *   rationale is the answer. (Templates without thinking ignore the variable.)
 * - The rationale is kept verbatim, not as the template would re-render it (Llama trims it, Qwen strips
 *   leading newlines): what is trained is what was sampled, token for token, so DPO's log-probabilities are
 *   those of the sampled sequences.
 * - The template is checked once when the format is made: rendering [user, assistant] must begin with the
 *   rendered prompt and go on with the answer right away, and the first token after the answer must be a
 *   special token (the end-of-turn token). A template that fails this cannot be trained on as prompt +
 *   rationale, and `model.promptFormat: "plain"` is the way out; the error says so.
 * - The template is code from the internet: it is rendered with a time and size budget, the probe and every
 *   question's prompt alike (chatTemplate.ts), and a refusal names the template's file.
 * - No extra BOS: a chat template writes `bos_token` itself where the model wants one (Llama 3), as
 *   transformers' `apply_chat_template` does.
 * - Dates are pinned: templates that print today's date (Llama 3.1–3.3 via `strftime_now`) see 26 Jul 2024,
 *   their own fallback, so a prompt is the same on every day it is rendered (training, sampling, a resumed run).
 */
export interface PromptFormat {
  readonly kind: "plain" | "chat";
  readonly tokenizer: TextTokenizer;
  /** The text the model reads before it writes a rationale. */
  promptText(question: string): string;
  /** The prompt's token ids (the BOS included in the plain format). */
  encodePrompt(question: string): number[];
  /** Prompt, completion and the token that ends it; the loss is masked to everything after the prompt. */
  encodeSequence(question: string, completion: string): EncodedSequence;
  /** Ids that end a rationale: EOS, and in the chat format the end-of-turn token. */
  readonly stopIds: readonly number[];
}

/** `model.promptFormat`: "auto" is chat when the tokenizer has a chat template, else plain. */
export type PromptFormatSetting = "auto" | "plain" | "chat";

/** A prompt + completion as tokens; `promptLength` counts every token before the completion. */
export interface EncodedSequence {
  ids: number[];
  promptLength: number;
}

/** The plain format's prompt text. */
export function formatPrompt(question: string): string {
  return `Question: ${question}\nAnswer: `;
}

/**
 * The prompt format a setting gives for a model's tokenizer. `source` is the model's folder, for errors (which
 * name the template's file in it). "chat" without a chat template is an error naming the setting; a template
 * that cannot be used is a ChatTemplateError.
 */
export function promptFormatFor(tokenizer: TextTokenizer, setting: PromptFormatSetting = "auto", source?: string): PromptFormat {
  if (setting === "plain") return new PlainFormat(tokenizer);
  const template = tokenizer.chatTemplate;
  if (template === null) {
    if (setting === "chat") {
      throw new Error(`model.promptFormat is "chat", but ${source ?? "the model"} has no chat template (no "chat_template" in its tokenizer_config.json, no chat_template.jinja); set model.promptFormat to "auto" or "plain"`);
    }
    return new PlainFormat(tokenizer);
  }
  return new ChatFormat(tokenizer, template, source);
}

/** The plain format's prompt ids; for a model of unknown format use `promptFormatFor`. */
export function encodePrompt(tokenizer: TextTokenizer, question: string): number[] {
  return new PlainFormat(tokenizer).encodePrompt(question);
}

/** The plain format's sequence; for a model of unknown format use `promptFormatFor`. */
export function encodeSequence(tokenizer: TextTokenizer, question: string, completion: string): EncodedSequence {
  return new PlainFormat(tokenizer).encodeSequence(question, completion);
}

/** Prompt ids by question: a question's prompt is encoded once, however many samples and pairs it has. */
abstract class CachingFormat {
  private readonly prompts = new Map<string, readonly number[]>();

  constructor(readonly tokenizer: TextTokenizer) {}

  abstract promptText(question: string): string;
  protected abstract promptIds(question: string): number[];
  protected abstract readonly endId: number;

  encodePrompt(question: string): number[] {
    let ids = this.prompts.get(question);
    if (ids === undefined) {
      ids = this.promptIds(question);
      this.prompts.set(question, ids);
    }
    return ids.slice();
  }

  encodeSequence(question: string, completion: string): EncodedSequence {
    const prompt = this.encodePrompt(question);
    return { ids: [...prompt, ...this.tokenizer.encode(completion), this.endId], promptLength: prompt.length };
  }
}

class PlainFormat extends CachingFormat implements PromptFormat {
  readonly kind = "plain";
  readonly stopIds: readonly number[];
  protected readonly endId: number;

  constructor(tokenizer: TextTokenizer) {
    super(tokenizer);
    this.endId = tokenizer.eosId;
    this.stopIds = [tokenizer.eosId];
  }

  promptText(question: string): string {
    return formatPrompt(question);
  }

  protected promptIds(question: string): number[] {
    const t = this.tokenizer;
    return [...(t.bosId === null ? [] : [t.bosId]), ...t.encode(formatPrompt(question))];
  }
}

class ChatFormat extends CachingFormat implements PromptFormat {
  readonly kind = "chat";
  readonly stopIds: readonly number[];
  /** The end-of-turn token: the first token the template writes after the assistant's answer. */
  readonly endOfTurnId: number;
  protected readonly endId: number;
  private readonly template: ChatTemplate;

  constructor(tokenizer: TextTokenizer, template: string, source: string | undefined) {
    super(tokenizer);
    // Every render, the probe's and each question's, runs within the template limits (chatTemplate.ts).
    this.template = new ChatTemplate(template, chatTemplateLabel(source, tokenizer.chatTemplateFile ?? "tokenizer_config.json"), tokenizer.specialTokenNames);
    const end = tokenizer.encode(probeChatTemplate(this.template))[0];
    if (end === undefined || !tokenizer.isSpecial(end)) throw unusable(this.template, "ends the assistant's turn with no special token");
    this.endOfTurnId = end;
    this.endId = end;
    this.stopIds = [...new Set([end, tokenizer.eosId])];
  }

  promptText(question: string): string {
    return this.template.render([{ role: "user", content: question }], true);
  }

  protected promptIds(question: string): number[] {
    return this.tokenizer.encode(this.promptText(question));
  }
}

/** A batch of prompts laid out for incremental decoding. */
export interface LeftPaddedPrompts {
  /** Longest prompt: the width of the first decoding pass. */
  width: number;
  /** [rows, width] token ids, pad_token_id on the left. */
  ids: Int32Array;
  /** [rows, width] positions; they count real tokens only (0 on padding). */
  positions: Int32Array;
  /** Per row, which key columns are real tokens; decoding appends a true per step. */
  valid: boolean[][];
  /** Per row, the position of the next token. */
  nextPositions: number[];
}

/** Left padding, so every row's next token sits at the same column; positions count real tokens only. */
export function leftPadPrompts(prompts: readonly (readonly number[])[], padId: number): LeftPaddedPrompts {
  const B = prompts.length;
  const T = Math.max(...prompts.map((p) => p.length));
  const ids = new Int32Array(B * T).fill(padId);
  const positions = new Int32Array(B * T);
  const valid: boolean[][] = [];
  const nextPositions: number[] = [];
  prompts.forEach((p, b) => {
    const pad = T - p.length;
    valid.push(Array.from({ length: T }, (_, j) => j >= pad));
    for (let j = 0; j < p.length; j++) {
      ids[b * T + pad + j] = p[j] as number;
      positions[b * T + pad + j] = j;
    }
    nextPositions.push(p.length);
  });
  return { width: T, ids, positions, valid, nextPositions };
}
