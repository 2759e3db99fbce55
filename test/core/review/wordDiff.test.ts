// The pair's word diff in the review (issue 28): two texts must never be glued together where a removed last word
// meets an added one ("themWeng earns…", "#### 2426").
import { test } from "node:test";
import assert from "node:assert/strict";
import { wordDiff } from "../../../src/core/review/wordDiff";

test("the word diff never runs two words together: a space is shown where a removed last word meets an added one", () => {
  // What the review showed as "themWeng earns" and "#### 2426": a text's last word has no space after it.
  const shown = (parts: ReturnType<typeof wordDiff>): string => parts.map((p) => `${p.op === "same" ? "" : p.op === "added" ? "+" : "-"}[${p.text}]${p.spaceAfter ? " " : ""}`).join("");
  const cut = wordDiff("Weng pays them", "Weng pays them.\nWeng earns 12 an hour.");
  assert.equal(shown(cut), "[Weng pays ]-[them] +[them.\nWeng earns 12 an hour.]");
  const answers = wordDiff("She sells 24 eggs.\n#### 24", "She sells 26 eggs.\n#### 26");
  assert.equal(shown(answers), "[She sells ]-[24 ]+[26 ][eggs.\n#### ]-[24] +[26]");
  // The parts' own texts still rebuild both sides exactly; a space already there gets no second one.
  assert.equal(answers.filter((p) => p.op !== "added").map((p) => p.text).join(""), "She sells 24 eggs.\n#### 24");
  assert.equal(answers.filter((p) => p.op !== "removed").map((p) => p.text).join(""), "She sells 26 eggs.\n#### 26");
  // The shared part takes the chosen side's spacing: where the chosen ends, the rejected's rest needs the space.
  assert.deepEqual(wordDiff("a b c", "a b"), [{ op: "same", text: "a b", spaceAfter: true }, { op: "removed", text: "c" }]);
  assert.deepEqual(wordDiff("a b", "a b c"), [{ op: "same", text: "a b " }, { op: "added", text: "c" }]);
  const long = "w ".repeat(2001);
  assert.equal(wordDiff(`${long}x`, "y")[0]!.spaceAfter, true, "the remove-all/add-all diff of long texts too");
});
