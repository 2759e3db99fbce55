import { defaultConfig, pretrainedTraining } from "./config";
import { SETTINGS, SETTING_GROUPS, rangeText, type SettingGroup, type SettingPath, type SettingRule } from "./configRules";

/*
 * The JSON schema of .selftrain/config.json and the selfTraining.* settings of package.json, generated from the
 * table parseConfig checks with (configRules.ts) and the defaults (defaultConfig). Both files are committed;
 * `npm run schema` writes them and test/core/selftrain/configSchema.test.ts fails when either differs from what
 * this generates.
 */

/** Where the schema is, relative to the repository (and the extension's folder): package.json's jsonValidation names it. */
export const CONFIG_SCHEMA_FILE = "schemas/selftrain-config.schema.json";

type JsonSchema = Record<string, unknown>;

/** Keys the parser skips at every level: "//" comments and "$schema". */
const IGNORED_KEYS = { "^(//|\\$.*)$": { description: "Ignored: a comment (\"//\") or a $-key such as $schema." } };

/** A value as a person writes it in config.json: 3e-7 rather than 3e-7's decimal 0.0000003. */
function shown(v: unknown): string {
  return typeof v === "number" && v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential().replace("e+", "e") : JSON.stringify(v);
}

function valueAt(o: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((x, k) => (typeof x === "object" && x !== null ? (x as Record<string, unknown>)[k] : undefined), o);
}

/**
 * A setting's hover text: its meaning, what 0 stands for, the allowed values and the default (both defaults where a
 * model folder starts from another: the pretrained model's training settings, pretrainedTraining()).
 */
export function settingDescription(path: SettingPath): string {
  const rule = SETTINGS[path];
  const fresh = valueAt(defaultConfig(), path);
  const pretrained = valueAt(pretrainedTraining(), path);
  const parts = [rule.description];
  if (rule.zero) parts.push(`0: ${rule.zero}.`);
  if (rule.min !== undefined || rule.max !== undefined) parts.push(`Allowed: ${rangeText(rule)}${rule.type === "integer" && rule.min !== rule.max ? ", whole numbers" : ""}.`);
  parts.push(pretrained !== undefined && pretrained !== fresh ? `Default: ${shown(fresh)} for a new model, ${shown(pretrained)} for a model folder.` : `Default: ${shown(fresh)}.`);
  return parts.join(" ");
}

/** The schema of one setting's value, as JSON Schema (draft-07) and VS Code's settings both read it. */
function valueSchema(path: SettingPath, rule: SettingRule): JsonSchema {
  const out: JsonSchema = { type: rule.type, default: valueAt(defaultConfig(), path) };
  if (rule.enum) out["enum"] = [...rule.enum];
  if (rule.enumDescriptions) out["enumDescriptions"] = [...rule.enumDescriptions];
  if (rule.min !== undefined) out[rule.minExclusive ? "exclusiveMinimum" : "minimum"] = rule.min;
  if (rule.max !== undefined) out[rule.maxExclusive ? "exclusiveMaximum" : "maximum"] = rule.max;
  out["description"] = settingDescription(path);
  return out;
}

function objectSchema(description: string, properties: Record<string, JsonSchema>): JsonSchema {
  return { type: "object", description, properties, patternProperties: IGNORED_KEYS, additionalProperties: false };
}

/** The JSON schema of .selftrain/config.json: every setting, unknown keys refused as parseConfig refuses them. */
export function configJsonSchema(): JsonSchema {
  const root: Record<string, JsonSchema> = { $schema: { type: "string", description: "The JSON schema of this file (optional: the extension applies it to .selftrain/config.json)." } };
  const groups: Partial<Record<SettingGroup, Record<string, JsonSchema>>> = {};
  for (const [path, rule] of Object.entries(SETTINGS) as Array<[SettingPath, SettingRule]>) {
    const [first, key] = path.split(".") as [string, string | undefined];
    if (key === undefined) {
      root[first] = valueSchema(path, rule);
      continue;
    }
    const group = first as SettingGroup;
    if (!groups[group]) root[group] = objectSchema(SETTING_GROUPS[group], (groups[group] = {}));
    groups[group]![key] = valueSchema(path, rule);
  }
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "Self-Training Studio settings (.selftrain/config.json)",
    ...objectSchema("The settings of a self-training workspace. A setting left out takes its default (a model folder's training settings are a pretrained model's). Generated from src/core/selftrain/configRules.ts by `npm run schema`.", root),
  };
}

/** package.json's contributes.configuration.properties: each setting (but formatVersion) as selfTraining.<path>, the defaults of a new workspace's config.json. */
export function settingsContribution(): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const [path, rule] of Object.entries(SETTINGS) as Array<[SettingPath, SettingRule]>) {
    if (path !== "formatVersion") out[`selfTraining.${path}`] = valueSchema(path, rule);
  }
  return out;
}

/** The schema file's text, as committed. */
export function configSchemaText(): string {
  return JSON.stringify(configJsonSchema(), null, 2) + "\n";
}

/** package.json's text with its selfTraining.* settings generated; everything else as it was. */
export function packageJsonWithSettings(packageJson: string): string {
  const pkg = JSON.parse(packageJson) as { contributes: { configuration: { properties: unknown } } };
  pkg.contributes.configuration.properties = settingsContribution();
  return JSON.stringify(pkg, null, 2) + "\n";
}
