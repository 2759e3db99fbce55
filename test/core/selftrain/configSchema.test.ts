// One source for config.json's rules: the committed JSON schema and package.json's selfTraining.* settings are what
// configRules.ts generates (`npm run schema` writes them), the extension contributes and packages the schema, and the
// schema and parseConfig agree on every setting's values: the editor underlines exactly what a round would refuse.
import { test } from "node:test";
import { configWithSetting } from "../../helpers/workspace";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CONFIG_SCHEMA_FILE, configJsonSchema, configSchemaText, packageJsonWithSettings } from "../../../src/core/selftrain/configSchema";
import { SETTINGS, type SettingRule } from "../../../src/core/selftrain/configRules";
import { ConfigError, defaultConfig, parseConfig } from "../../../src/core/selftrain/config";
import { repoRoot } from "../../helpers/paths";

type Schema = { type?: string; enum?: unknown[]; minimum?: number; maximum?: number; exclusiveMinimum?: number; exclusiveMaximum?: number; properties?: Record<string, Schema>; patternProperties?: Record<string, Schema>; additionalProperties?: boolean };

/** The part of JSON Schema the generated schema uses, as an editor applies it: the first reason a value fails, or null. */
function violation(schema: Schema, value: unknown, at = "(root)"): string | null {
  const t = schema.type;
  if (t === "object" && (typeof value !== "object" || value === null || Array.isArray(value))) return `${at}: not an object`;
  if (t === "integer" && !(typeof value === "number" && Number.isInteger(value))) return `${at}: not an integer`;
  if (t === "number" && typeof value !== "number") return `${at}: not a number`;
  if ((t === "string" || t === "boolean") && typeof value !== t) return `${at}: not a ${t}`;
  if (schema.enum && !schema.enum.includes(value)) return `${at}: not one of the enum`;
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) return `${at}: below minimum`;
    if (schema.maximum !== undefined && value > schema.maximum) return `${at}: above maximum`;
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return `${at}: not above exclusiveMinimum`;
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) return `${at}: not below exclusiveMaximum`;
  }
  if (t === "object") {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const sub = schema.properties?.[k] ?? Object.entries(schema.patternProperties ?? {}).find(([p]) => new RegExp(p, "u").test(k))?.[1];
      if (sub === undefined) {
        if (schema.additionalProperties === false) return `${at}.${k}: not allowed`;
        continue;
      }
      const why = violation(sub, v, `${at}.${k}`);
      if (why) return why;
    }
  }
  return null;
}


/** Values at and just beyond each edge of a setting's range, and of the wrong kinds. */
function probes(rule: SettingRule): unknown[] {
  const out: unknown[] = ["fast", true, null, {}, [], 0, 1, -1, 0.5, 1e12, Number.NaN];
  for (const edge of [rule.min, rule.max]) if (edge !== undefined) out.push(edge, edge - 1, edge + 1, edge - 1e-9, edge + 1e-9);
  if (rule.enum) out.push(...rule.enum, "bogus", rule.enum[0]!.toUpperCase());
  return out;
}

/** Rules that tie one setting to another (config.ts checkRanges): the schema, per setting, cannot hold them. */
const CROSS_SETTING = /must be between 1 and \w+\.batchSize|or steps must be at least 1|must not exceed eval\.passSamples|must be divisible by model\.heads|must be a multiple of model\.kvHeads|rotary embeddings|shorter than \w+\.maxLength|sizes give a new model|above 1e-3 on a pretrained model|has no chat template/;

test("the committed schema and package.json's settings are what the table generates (run `npm run schema` after changing configRules.ts)", () => {
  assert.equal(readFileSync(join(repoRoot, CONFIG_SCHEMA_FILE), "utf8"), configSchemaText(), `${CONFIG_SCHEMA_FILE} is stale: run npm run schema`);
  const pkg = readFileSync(join(repoRoot, "package.json"), "utf8");
  assert.equal(pkg, packageJsonWithSettings(pkg), "package.json's selfTraining.* settings are stale: run npm run schema");
});

test("the extension contributes the schema for .selftrain/config.json, and the package carries it", () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
  const validation = pkg.contributes.jsonValidation as Array<{ fileMatch: string; url: string }>;
  assert.deepEqual(validation, [{ fileMatch: "**/.selftrain/config.json", url: `./${CONFIG_SCHEMA_FILE}` }]);
  // VS Code's JSON service matches "**/" + the pattern against the file's path (vscode-json-languageservice).
  const glob = new RegExp(`(^|/)${validation[0]!.fileMatch.replace("**/", "").replace(/\./g, "\\.")}$`);
  assert.ok(glob.test("/home/me/ws/.selftrain/config.json"));
  assert.ok(!glob.test("/home/me/ws/.selftrain/runs/a/config.json") && !glob.test("/home/me/ws/config.json"));
  const ignore = readFileSync(join(repoRoot, ".vscodeignore"), "utf8").split("\n");
  assert.ok(ignore.includes("!schemas/*.json"), ".vscodeignore lets the schema into the .vsix");
});

test("every setting has its type, default, one line of meaning, and its range where it has one", () => {
  const schema = configJsonSchema() as Schema & { properties: Record<string, Schema & { description: string; default: unknown }> };
  assert.equal(schema.additionalProperties, false);
  assert.equal(violation(schema, defaultConfig()), null);
  assert.equal(violation(schema, defaultConfig("models/base")), null);
  for (const [path, rule] of Object.entries(SETTINGS)) {
    const keys = path.split(".");
    const node = (keys.length === 1 ? schema.properties[path] : schema.properties[keys[0]!]!.properties![keys[1]!]) as Schema & { description: string; default: unknown };
    assert.equal(node.type, rule.type, path);
    assert.ok(node.description.startsWith(rule.description) && /Default: /.test(node.description), path);
    assert.notEqual(node.default, undefined, path);
    if (rule.type === "integer" || rule.type === "number") assert.ok(rule.min !== undefined, `${path} has a lower bound`);
  }
  const lr = schema.properties["dpo"]!.properties!["learningRate"] as { description: string };
  assert.match(lr.description, /Default: 1e-5 for a new model, 3e-7 for a model folder\.$/);
});

test("the schema refuses what parseConfig refuses, setting by setting, and nothing it accepts", () => {
  const schema = configJsonSchema() as Schema;
  let refusedByBoth = 0;
  for (const [path, rule] of Object.entries(SETTINGS)) {
    for (const value of probes(rule)) {
      const raw = configWithSetting(path, value);
      const shown = `${path} = ${JSON.stringify(value)}`;
      const schemaWhy = violation(schema, JSON.parse(JSON.stringify(raw)) as unknown);
      let parserWhy: string | null = null;
      try {
        parseConfig(JSON.parse(JSON.stringify(raw)));
      } catch (e) {
        assert.ok(e instanceof ConfigError, shown);
        parserWhy = e.reason;
      }
      // JSON has no NaN: written to a file it becomes null, which both refuse.
      if (schemaWhy !== null) assert.notEqual(parserWhy, null, `${shown}: the schema refuses it (${schemaWhy}) but the parser accepts it`);
      if (parserWhy !== null && schemaWhy === null) assert.match(parserWhy, CROSS_SETTING, `${shown}: the parser refuses it (${parserWhy}) but the schema accepts it`);
      if (parserWhy !== null && schemaWhy !== null) refusedByBoth++;
    }
  }
  assert.ok(refusedByBoth > 300, `${refusedByBoth} refused by both`);
});

test("unknown keys are refused at every level, as the parser refuses them; comments and $schema are not", () => {
  const schema = configJsonSchema() as Schema;
  for (const raw of [{ sampling: { maxNewToken: 300 } }, { maxNewTokens: 300 }, { dpo: { betta: 0.2 } }]) {
    assert.match(violation(schema, raw) ?? "", /not allowed$/, JSON.stringify(raw));
    assert.throws(() => parseConfig(raw), /is not a setting/);
  }
  const commented = { $schema: "./schema.json", "//": "why these settings", sampling: { "//": ["a note"], maxNewTokens: 100 } };
  assert.equal(violation(schema, commented), null);
  assert.equal(parseConfig(commented).sampling.maxNewTokens, 100);
});
