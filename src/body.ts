// Reads a JSON request body with the checks a public endpoint needs: content
// type, a byte limit enforced while streaming (a missing or lying
// Content-Length cannot get past it), and a clear error for malformed JSON.
import { MalformedJsonError, PayloadTooLargeError, UnsupportedMediaTypeError } from "./errors.ts";

export async function readJsonBody(request: Request, maxBytes: number, what: string): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new UnsupportedMediaTypeError(`Cannot read ${what}: expected Content-Type application/json, got ${type ? `"${type}"` : "none"}`);
  }
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) {
    throw new PayloadTooLargeError(`Cannot read ${what}: body of ${declared} bytes exceeds ${maxBytes} bytes`);
  }
  let bytes: Uint8Array;
  if (!request.body) {
    bytes = new Uint8Array(0);
  } else {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new PayloadTooLargeError(`Cannot read ${what}: body exceeds ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
    bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new MalformedJsonError(`Cannot read ${what}: body is not valid UTF-8`, { cause });
  }
  if (text.trim() === "") throw new MalformedJsonError(`Cannot read ${what}: body is empty`);
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new MalformedJsonError(`Cannot read ${what}: malformed JSON (${(cause as Error).message})`, { cause });
  }
}
