import { test } from "node:test";
import assert from "node:assert/strict";
import { contentHash, normaliseRationale } from "../../../src/core/store/hash";

test("contentHash is 16 hex digits of sha256 over question NUL normalised rationale", () => {
  // Golden value from the shell: printf 'What is 2+3?\0So 2 + 3 = 5. #### 5' | sha256sum | cut -c1-16
  assert.equal(contentHash("What is 2+3?", "So 2 + 3 = 5. #### 5"), "a6e7080cc53ee96e");
  assert.match(contentHash("q", "r"), /^[0-9a-f]{16}$/);
});

test("whitespace-only differences in the rationale give the same hash", () => {
  const h = contentHash("What is 2+3?", "So 2 + 3 = 5. #### 5");
  assert.equal(contentHash("What is 2+3?", "So 2 + 3 = 5. #### 5\n"), h);
  assert.equal(contentHash("What is 2+3?", "  So 2  +\t3 = 5.\n#### 5   "), h);
  assert.equal(normaliseRationale("  a \n\n b\t c  "), "a b c");
  assert.notEqual(contentHash("What is 2+3?", "So 2 + 3 = 6. #### 6"), h);
});

test("different questions give different hashes, and the separator keeps the two fields apart", () => {
  assert.notEqual(contentHash("What is 2+3?", "5"), contentHash("What is 2+4?", "5"));
  assert.notEqual(contentHash("ab", "c"), contentHash("a", "bc"));
});
