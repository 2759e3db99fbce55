/** The shape of manifest.json, checked on open so that a hand-edited or foreign file fails with a clear message. */
import { STAGE_NAMES, TORCH_DTYPES, type TorchDtype, type RunManifest, type RunMode, type StageName, type StageRecord, type StageState } from "../../shared/runTypes";
import { isRecord as isObject } from "../../shared/messageGuards";

export { STAGE_NAMES };

export const STAGE_STATES: readonly StageState[] = ["pending", "running", "done", "failed", "cancelled"];
export const RUN_MODES: readonly RunMode[] = ["dpo-st", "st"];

function validateStage(v: unknown, where: string): StageRecord {
  if (!isObject(v)) throw new Error(`${where} must be an object`);
  if (!STAGE_STATES.includes(v["state"] as StageState)) {
    throw new Error(`${where}.state must be one of ${STAGE_STATES.join(", ")}, not ${JSON.stringify(v["state"])}`);
  }
  for (const key of ["startedAt", "finishedAt", "error", "host", "processStart"]) {
    if (v[key] !== undefined && typeof v[key] !== "string") throw new Error(`${where}.${key} must be a string`);
  }
  if (v["pid"] !== undefined && !(Number.isSafeInteger(v["pid"]) && (v["pid"] as number) > 0)) throw new Error(`${where}.pid must be a positive integer`);
  const counts = v["counts"];
  if (counts !== undefined) {
    if (!isObject(counts)) throw new Error(`${where}.counts must be an object`);
    for (const [k, n] of Object.entries(counts)) {
      if (typeof n !== "number" || !Number.isFinite(n)) throw new Error(`${where}.counts.${k} must be a number`);
    }
  }
  const checkpoint = v["checkpoint"];
  if (checkpoint !== undefined) {
    if (!isObject(checkpoint)) throw new Error(`${where}.checkpoint must be an object`);
    for (const key of ["dtype", "sourceDtype"]) {
      if (!TORCH_DTYPES.includes(checkpoint[key] as TorchDtype)) {
        throw new Error(`${where}.checkpoint.${key} must be one of ${TORCH_DTYPES.join(", ")}, not ${JSON.stringify(checkpoint[key])}`);
      }
    }
  }
  return v as unknown as StageRecord;
}

/**
 * Checks a parsed manifest.json; errors read `<file>: <what is wrong>`. `supportedVersion` is the newest
 * format this build reads (MANIFEST_FORMAT_VERSION in runStore.ts).
 */
export function validateManifest(value: unknown, file: string, folderRunId: string, supportedVersion: number): RunManifest {
  try {
    if (!isObject(value)) throw new Error("expected a JSON object");
    const version = value["formatVersion"];
    if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
      throw new Error(`formatVersion must be a positive integer, not ${JSON.stringify(version)}`);
    }
    // Checked before the shape: a newer format may be shaped differently, and "update" is the useful advice.
    if (version > supportedVersion) {
      throw new Error(
        `format version ${version} is newer than this version of Self-Training Studio can read ` +
          `(${supportedVersion}); update the extension to open this run`,
      );
    }
    if (value["runId"] !== folderRunId) {
      const runId = JSON.stringify(value["runId"]);
      throw new Error(`runId is ${runId} but the run's folder is "${folderRunId}"; they must match`);
    }
    if (!RUN_MODES.includes(value["mode"] as RunMode)) {
      throw new Error(`mode must be one of ${RUN_MODES.join(", ")}, not ${JSON.stringify(value["mode"])}`);
    }
    if (typeof value["createdAt"] !== "string") throw new Error("createdAt must be a string");
    const rounds = value["rounds"];
    if (!Array.isArray(rounds)) throw new Error("rounds must be an array");
    const seen = new Set<number>();
    rounds.forEach((r: unknown, i) => {
      if (!isObject(r)) throw new Error(`rounds[${i}] must be an object`);
      const n = r["round"];
      if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
        throw new Error(`rounds[${i}].round must be a non-negative integer`);
      }
      if (seen.has(n)) throw new Error(`round ${n} appears twice in rounds`);
      seen.add(n);
      if (!isObject(r["stages"])) throw new Error(`rounds[${i}].stages must be an object`);
      for (const [name, stage] of Object.entries(r["stages"])) {
        if (!STAGE_NAMES.includes(name as StageName)) {
          throw new Error(`rounds[${i}].stages has an unknown stage "${name}"`);
        }
        validateStage(stage, `rounds[${i}].stages.${name}`);
      }
    });
    const manifest = value as unknown as RunManifest;
    manifest.rounds.sort((a, b) => a.round - b.round);
    return manifest;
  } catch (e) {
    throw new Error(`${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
