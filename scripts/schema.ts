// Writes schemas/selftrain-config.schema.json and package.json's selfTraining.* settings from the table parseConfig
// checks with (src/core/selftrain/configRules.ts): `npm run schema`. test/core/selftrain/configSchema.test.ts fails
// while either file differs from what this writes.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { CONFIG_SCHEMA_FILE, configSchemaText, packageJsonWithSettings } from "../src/core/selftrain/configSchema";

const root = join(__dirname, "..");
const schema = join(root, CONFIG_SCHEMA_FILE);
mkdirSync(dirname(schema), { recursive: true });
writeFileSync(schema, configSchemaText());
const pkg = join(root, "package.json");
writeFileSync(pkg, packageJsonWithSettings(readFileSync(pkg, "utf8")));
console.log(`wrote ${CONFIG_SCHEMA_FILE} and package.json's selfTraining.* settings`);
