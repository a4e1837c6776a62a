// A minimal HTTP/1.1 keep-alive client connection over Bun.connect, for load
// generators: one TCP connection, one request in flight, responses framed by
// Content-Length. Cheap enough that the generator is not the bottleneck.
const HEADER_END = "\r\n\r\n";
const CONTENT_LENGTH = /\r\ncontent-length:\s*(\d+)/i;

export interface HttpConnection {
  /** Sends one complete request (head and body). */
  send(request: Uint8Array): void;
  readonly closed: boolean;
  close(): void;
}

export interface HttpHandlers {
  response(status: number, raw: string): void;
  /** The server closed the connection or the socket failed. */
  closed?(reason: string): void;
}

export function postRequest(url: URL, path: string, body: string): Uint8Array {
  return Buffer.from(
    `POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export async function connectHttp(url: URL, handlers: HttpHandlers): Promise<HttpConnection> {
  let buffer = "";
  let pending: Uint8Array | null = null;
  let closed = false;
  const socket = await Bun.connect({
    hostname: url.hostname,
    port: Number(url.port),
    socket: {
      data(_s, data) {
        buffer += data.toString("latin1");
        for (;;) {
          const end = buffer.indexOf(HEADER_END);
          if (end < 0) return;
          const length = Number(CONTENT_LENGTH.exec(buffer.slice(0, end + 2))?.[1] ?? -1);
          if (length < 0) throw new Error(`response without Content-Length: ${buffer.slice(0, 200)}`);
          const total = end + 4 + length;
          if (buffer.length < total) return;
          const raw = buffer.slice(0, total);
          buffer = buffer.slice(total);
          handlers.response(Number(raw.slice(9, 12)), raw);
        }
      },
      drain(s) {
        if (!pending) return;
        const n = s.write(pending);
        pending = n < pending.byteLength ? pending.subarray(Math.max(0, n)) : null;
      },
      close() {
        if (!closed) handlers.closed?.("connection closed by server");
        closed = true;
      },
      error(_s, error) {
        if (!closed) handlers.closed?.(String(error));
        closed = true;
      },
    },
  });
  return {
    send(request) {
      const n = socket.write(request);
      if (n < request.byteLength) pending = request.subarray(Math.max(0, n));
    },
    get closed() {
      return closed;
    },
    close() {
      closed = true;
      socket.end();
    },
  };
}
