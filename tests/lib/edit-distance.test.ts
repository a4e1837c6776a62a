import { describe, expect, test } from "bun:test";
import { editDistance, nearest } from "../../src/lib/edit-distance.ts";

describe("editDistance()", () => {
  test("counts insertions, deletions, substitutions and swapped neighbours as one edit each", () => {
    expect(editDistance("ZOE_SYNCRONOUS", "ZOE_SYNCHRONOUS")).toBe(1);
    expect(editDistance("ZOE_SYNCHRONOUSS", "ZOE_SYNCHRONOUS")).toBe(1);
    expect(editDistance("ZOE_SYNCHRONOUZ", "ZOE_SYNCHRONOUS")).toBe(1);
    expect(editDistance("ZOE_SNYCHRONOUS", "ZOE_SYNCHRONOUS")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("abc", "")).toBe(3);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("same", "same")).toBe(0);
  });
});

describe("nearest()", () => {
  test("picks the closest candidate, the first of equals, or null without candidates", () => {
    expect(nearest("ZOE_PROT", ["ZOE_PORT", "ZOE_HOST"])).toEqual({ name: "ZOE_PORT", distance: 1 });
    expect(nearest("ab", ["ax", "ay"])).toEqual({ name: "ax", distance: 1 });
    expect(nearest("x", [])).toBeNull();
  });
});
