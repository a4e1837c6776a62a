import { describe, expect, test } from "bun:test";
import { inexactIntegerAt, MAX_JSON_DEPTH, readJsonBody, tooDeepAt } from "../../src/http/body.ts";
import {
  MalformedJsonError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
} from "../../src/domain/errors.ts";

const LIMIT = 1024;
const post = (body: BodyInit | null, headers: Record<string, string> = { "content-type": "application/json" }) =>
  new Request("http://localhost/x", { method: "POST", headers, body, duplex: "half" } as RequestInit);

async function failure(request: Request): Promise<Error> {
  try {
    await readJsonBody(request, LIMIT, "thing");
  } catch (error) {
    return error as Error;
  }
  throw new Error("readJsonBody accepted the request");
}

function chunked(chunks: string[], onPull?: () => void): ReadableStream<Uint8Array> {
  let i = 0;
  // highWaterMark 0: pull runs only when the reader asks, so `onPull` counts reads.
  return new ReadableStream(
    {
      pull(c) {
        onPull?.();
        if (i >= chunks.length) return c.close();
        c.enqueue(new TextEncoder().encode(chunks[i++]!));
      },
    },
    { highWaterMark: 0 },
  );
}

describe("readJsonBody()", () => {
  test("parses JSON with application/json, with or without a charset", async () => {
    expect(await readJsonBody(post('{"a":[1,2]}'), LIMIT, "thing")).toEqual({ a: [1, 2] });
    expect(
      await readJsonBody(post("[1]", { "content-type": "Application/JSON; charset=utf-8" }), LIMIT, "thing"),
    ).toEqual([1]);
  });

  test("a streamed body of exactly the limit is read whole", async () => {
    const json = `"${"a".repeat(LIMIT - 2)}"`;
    expect(await readJsonBody(post(chunked([json.slice(0, 100), json.slice(100)])), LIMIT, "thing")).toBe(
      "a".repeat(LIMIT - 2),
    );
  });

  test("another content type is a 415 naming what came", async () => {
    for (const type of ["text/plain", "application/jsonp", "application/x-www-form-urlencoded"]) {
      const e = await failure(post("{}", { "content-type": type }));
      expect(e).toBeInstanceOf(UnsupportedMediaTypeError);
      expect(e.message).toContain(`got "${type}"`);
    }
    expect((await failure(post("{}", {}))).message).toMatch(/got (none|"text\/plain;charset=utf-8")/);
  });

  test("a declared Content-Length over the limit is a 413 before anything is read", async () => {
    let pulled = 0;
    const request = post(
      chunked(["{}"], () => pulled++),
      { "content-type": "application/json", "content-length": String(LIMIT + 1) },
    );
    const e = await failure(request);
    expect(e).toBeInstanceOf(PayloadTooLargeError);
    expect(e.message).toBe(`Cannot read thing: body of ${LIMIT + 1} bytes exceeds ${LIMIT} bytes`);
    expect(pulled).toBe(0);
  });

  test("a chunked body without Content-Length is cut off as soon as it passes the limit", async () => {
    let pulled = 0;
    const e = await failure(
      post(
        chunked(
          Array.from({ length: 100 }, () => "x".repeat(300)),
          () => pulled++,
        ),
      ),
    );
    expect(e).toBeInstanceOf(PayloadTooLargeError);
    expect(pulled).toBeLessThan(10);
  });

  test("empty, malformed or non-UTF-8 bodies are MalformedJsonError (400)", async () => {
    for (const body of [null, "", "  \n", "{", "{'a':1}", "[1,]", "NaN"]) {
      const e = await failure(post(body));
      expect(e).toBeInstanceOf(MalformedJsonError);
      expect((e as MalformedJsonError).status).toBe(400);
      expect(e.message).toStartWith("Cannot read thing: ");
    }
    expect((await failure(post(new Uint8Array([0x22, 0xc3, 0x28, 0x22])))).message).toContain("not valid UTF-8");
  });

  test("JSON nested deeper than MAX_JSON_DEPTH is a 400 naming where, however deep (no stack overflow)", async () => {
    const nest = (depth: number) => `{"meta":{"a~b":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
    expect(await readJsonBody(post(nest(MAX_JSON_DEPTH - 2)), LIMIT * 1024, "thing")).toBeDefined();
    for (const depth of [MAX_JSON_DEPTH - 1, 100_000]) {
      let error: unknown;
      try {
        await readJsonBody(post(nest(depth)), LIMIT * 1024, "thing");
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ValidationError);
      const detail = (error as ValidationError).details as { path: string }[];
      expect(detail[0]!.path).toStartWith("/meta/a~0b/0/0");
    }
  });
});

describe("integers beyond 2^53 - 1", () => {
  test("readJsonBody() refuses an integer that would be rounded with a 400 naming it and where, as it refuses 1e400", async () => {
    const error = await failure(post('{"meta":{"order_ids":[7,9007199254740993]}}'));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toBe(
      "Cannot read thing: integer 9007199254740993 at /meta/order_ids/1 is beyond ±9007199254740991 and would not be kept exactly; send it as a string",
    );
    expect((error as ValidationError).details).toEqual([
      { path: "/meta/order_ids/1", message: "Expected an integer within ±9007199254740991 (2^53 - 1), or a string" },
    ]);
    expect(((await failure(post('{"n":-9007199254740992}'))) as ValidationError).details).toMatchObject([
      { path: "/n" },
    ]);
  });

  test("readJsonBody() keeps the largest safe integers, long digit runs in strings, fractions and exponents", async () => {
    const text =
      '{"a":9007199254740991,"b":-9007199254740991,"s":"\\"12345678901234567890","f":0.12345678901234567,"e":12345678901234567e3}';
    expect(await readJsonBody(post(text), LIMIT, "thing")).toEqual(JSON.parse(text));
  });

  test("inexactIntegerAt() finds the literal in nested arrays and escaped keys", () => {
    const text = '[{"a":1},{"b/c":{"d~":[99999999999999999999]}}]';
    expect(inexactIntegerAt(text, JSON.parse(text))).toEqual({
      literal: "99999999999999999999",
      path: "/1/b~1c/d~0/0",
    });
    expect(inexactIntegerAt('{"x":"99999999999999999999"}', { x: "99999999999999999999" })).toBeNull();
  });
});

test("tooDeepAt() finds the first container past the limit, in objects and arrays alike", () => {
  expect(tooDeepAt({ a: [1, { b: 2 }] }, 3)).toBeNull();
  expect(tooDeepAt({ a: [1, { b: {} }] }, 3)).toBe("/a/1/b");
  expect(tooDeepAt([[[]]], 2)).toBe("/0/0");
  expect(tooDeepAt("scalar", 0)).toBeNull();
});
