import { test } from "node:test";
import assert from "node:assert/strict";
import { interval95 } from "../../scripts/reproduce";

test("bench:reproduce's 95% interval of a mean paired difference over seeds is Student's t, computed by hand", () => {
  // mean 2, sd 1, n 3: 2 ± 4.303 / √3 = 2 ± 2.484.
  assert.equal(interval95([1, 2, 3]), "[−0.5, +4.5]");
  // mean 13, sd 15, n 3: 13 ± 37.27.
  assert.equal(interval95([13, -2, 28]), "[−24.3, +50.3]");
  // n 2: t = 12.706; mean 1, sd √2: 1 ± 12.706.
  assert.equal(interval95([0, 2]), "[−11.7, +13.7]");
  assert.equal(interval95([5]), "–");
});
