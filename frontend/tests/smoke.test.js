// Placeholder until the tab's pure modules get their own tests: the runner must find at least one file.
import { test } from "node:test";
import assert from "node:assert/strict";

test("node test runner works", () => {
  assert.equal(1 + 1, 2);
});
