// Raw HTTP/1.1 over a TCP socket, for requests fetch() will not send: lying
// or missing lengths, bytes trickled one at a time, bodies cut off mid-way.
import { connect, type Socket } from "node:net";
import { readFileSync } from "node:fs";

export interface RawResult {
  /** Everything the server sent before closing (or before we gave up). */
  response: string;
  /** Status code of the first response, or null if none came. */
  status: number | null;
  /** Bytes of `parts` written before the response arrived. */
  sent: number;
}

/**
 * Writes `parts` one after another (waiting `gapMs` between them) and stops
 * writing as soon as a response head arrives; resolves once the head and
 * body are in or the server closes.
 */
export function rawExchange(port: number, parts: (string | Uint8Array)[], gapMs = 0): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let response = "";
    let sent = 0;
    let i = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      socket.destroy();
      resolve({ response, sent, status: headStatus(response) });
    };
    socket.on("data", (d) => {
      response += d.toString("latin1");
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(response);
      const headEnd = response.indexOf("\r\n\r\n");
      if (headEnd >= 0 && (!length || response.length - headEnd - 4 >= Number(length[1]))) finish();
    });
    socket.on("close", finish);
    socket.on("error", finish);
    const pump = () => {
      if (finished || response !== "" || i >= parts.length) return;
      const part = parts[i++]!;
      sent += part.length;
      socket.write(part, () => (gapMs > 0 ? setTimeout(pump, gapMs) : setImmediate(pump)));
    };
    socket.on("connect", pump);
  });
}

function headStatus(response: string): number | null {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(response);
  return m ? Number(m[1]) : null;
}

/**
 * A socket that writes `prefix` at once, then trickles `text` one byte every
 * `everyMs`; `closed` resolves when it closes, with how much of `text` went out.
 */
export function trickle(
  port: number,
  prefix: string,
  text: string,
  everyMs: number,
): { socket: Socket; closed: Promise<{ at: number; sent: number }> } {
  const socket = connect(port, "127.0.0.1", () => {
    if (prefix) socket.write(prefix);
  });
  const started = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < text.length && !socket.destroyed) socket.write(text[sent++]!);
  }, everyMs);
  const closed = new Promise<{ at: number; sent: number }>((resolve) => {
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ at: performance.now() - started, sent });
    });
    socket.on("error", () => {});
  });
  return { socket, closed };
}

/** Resident memory of a process in MiB (Linux). */
export function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
}
