import { describe, expect, test } from "bun:test";
import { PostgrestError } from "../../scripts/supabase-local/rest-errors.ts";
import {
  nonNegative,
  orderModifiers,
  parseFilter,
  parsePrefer,
  parseSelectItem,
  splitList,
} from "../../scripts/supabase-local/rest-parse.ts";

/** The PostgrestError `fn` throws, as {status, code, details}. */
function refusal(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof PostgrestError)) throw error;
    return { status: error.status, code: error.code, details: error.details };
  }
  throw new Error("expected a PostgrestError");
}

describe("the PostgREST query grammar", () => {
  test("splitList() keeps commas inside double quotes and unescapes them", () => {
    expect(splitList('a, b ,"c,d","e\\"f"')).toEqual(["a", "b", "c,d", 'e"f']);
  });

  test("parsePrefer() reads each key=value of a Prefer header", () => {
    expect([...parsePrefer("return=representation, resolution=merge-duplicates,count=exact")]).toEqual([
      ["return", "representation"],
      ["resolution", "merge-duplicates"],
      ["count", "exact"],
    ]);
    expect(parsePrefer(null).size).toBe(0);
  });

  test("parseFilter() reads [not.]op.value, is and in lists", () => {
    expect(parseFilter("gte.10")).toEqual({ negate: false, op: "gte", value: "10" });
    expect(parseFilter("not.like.AB*")).toEqual({ negate: true, op: "like", value: "AB*" });
    expect(parseFilter("is.NULL")).toEqual({ negate: false, op: "is", value: "null" });
    expect(parseFilter('in.(1,"2,3")')).toEqual({ negate: false, op: "in", items: ["1", "2,3"] });
    expect(parseFilter("in.()")).toEqual({ negate: false, op: "in", items: [] });
  });

  test("parseFilter() refuses unknown operators (Object.prototype names too), bad is values and in without parentheses with PGRST100", () => {
    expect(refusal(() => parseFilter("approx.3"))).toEqual({
      status: 400,
      code: "PGRST100",
      details: 'unknown operator "approx"',
    });
    expect(refusal(() => parseFilter("constructor.3")).details).toBe('unknown operator "constructor"');
    expect(refusal(() => parseFilter("is.maybe")).details).toBe(
      'unexpected "maybe" expecting null, true, false or unknown',
    );
    expect(refusal(() => parseFilter("in.1,2")).details).toBe('expecting "("');
  });

  test("parseSelectItem() reads alias:name::cast and refuses anything else", () => {
    expect(parseSelectItem("n:seq::text", "n:seq::text")).toEqual({ alias: "n", name: "seq", cast: "text" });
    expect(parseSelectItem("*", "*")).toBe("*");
    expect(refusal(() => parseSelectItem("meta->a", "id,meta->a"))).toEqual({
      status: 400,
      code: "PGRST100",
      details: 'unexpected "meta->a"',
    });
  });

  test("orderModifiers() and nonNegative() take only what PostgREST documents", () => {
    expect(orderModifiers("seq.desc.nullslast", "seq.desc.nullslast")).toEqual({ dir: " desc", nulls: " nulls last" });
    expect(refusal(() => orderModifiers("seq.down", "seq.down")).details).toBe(
      'unexpected "down" expecting "asc", "desc", "nullsfirst" or "nullslast"',
    );
    expect(nonNegative("limit", "20")).toBe(20);
    expect(nonNegative("limit", null)).toBeNull();
    expect(refusal(() => nonNegative("offset", "-1")).details).toBe('unexpected "-1" expecting digit');
  });
});
