// A misbehaving network on loopback, between the flusher and the Supabase
// gateway. It speaks HTTP/1.1 on raw TCP sockets (Bun.listen), so besides
// answering with any status it can do what an HTTP server cannot: cut the
// connection before or after the remote committed, stall forever, or cut a
// response halfway. Each request is decided on its own (keep-alive is fine).
import type { Socket, TCPSocketListener } from "bun";

export type FaultAction =
  /** Passes the request on; `delayMs` before forwarding. */
  | { kind: "forward"; delayMs?: number }
  /** Answers without asking the remote. */
  | { kind: "status"; status: number; retryAfter?: string }
  /** Never answers; the client's timeout ends it. */
  | { kind: "stall" }
  /** Cuts the connection before the remote sees the request. */
  | { kind: "drop" }
  /** The remote commits; then the connection is cut (the answer is swallowed). */
  | { kind: "commit-then-drop" }
  /** The remote commits; then the answer never comes. */
  | { kind: "commit-then-stall" }
  /** The remote commits; then the client is told it failed. */
  | { kind: "commit-then-status"; status: number }
  /** The remote commits; half of its answer goes back, then the connection is cut. */
  | { kind: "truncate" };

export interface ProxiedRequest {
  /** 1-based count of requests seen. */
  n: number;
  method: string;
  path: string;
  body: Uint8Array;
}

export interface ProxyLogEntry {
  n: number;
  path: string;
  action: FaultAction["kind"];
  /** Status the remote answered, when it was asked. */
  upstream: number | null;
  at: number;
}

export interface FaultProxyOptions {
  /** Base URL of the real remote, e.g. the gateway's. */
  upstream: string;
  /** What to do with a request (default: forward). May hold the request by not resolving yet. */
  plan?: (req: ProxiedRequest) => FaultAction | Promise<FaultAction>;
  /** Runs after the remote answered and before the answer goes back; may hold it. */
  afterUpstream?: (req: ProxiedRequest, status: number) => void | Promise<void>;
}

export interface FaultProxy {
  url: string;
  /** Requests seen so far. */
  calls(): number;
  /** Requests being handled right now. */
  inFlight(): number;
  log: ProxyLogEntry[];
  setPlan(plan: FaultProxyOptions["plan"]): void;
  setAfterUpstream(hook: FaultProxyOptions["afterUpstream"]): void;
  stop(): void;
}

interface ConnState {
  buf: Uint8Array;
  busy: boolean;
  /** A stalled connection takes no further requests. */
  stalled: boolean;
  out: Uint8Array[];
  closed: boolean;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "content-encoding",
  "host",
  "upgrade",
]);
const CRLF2 = new Uint8Array([13, 10, 13, 10]);
const decoder = new TextDecoder();
const encoder = new TextEncoder();

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** One complete request at the front of `buf`, or null when more bytes are needed. */
function parseRequest(
  buf: Uint8Array,
): { method: string; path: string; headers: [string, string][]; body: Uint8Array; size: number } | null {
  const end = indexOf(buf, CRLF2);
  if (end < 0) return null;
  const [start, ...lines] = decoder.decode(buf.subarray(0, end)).split("\r\n");
  const [method, path] = start!.split(" ");
  const headers = lines.map((l) => {
    const i = l.indexOf(":");
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as [string, string];
  });
  if (headers.some(([k, v]) => k === "transfer-encoding" && /chunked/i.test(v)))
    throw new Error("fault proxy: chunked request bodies are not supported");
  const length = Number(headers.find(([k]) => k === "content-length")?.[1] ?? 0);
  if (buf.length < end + 4 + length) return null;
  return { method: method!, path: path!, headers, body: buf.slice(end + 4, end + 4 + length), size: end + 4 + length };
}

function httpResponse(status: number, headers: [string, string][], body: Uint8Array): Uint8Array {
  let head = `HTTP/1.1 ${status} X\r\n`;
  for (const [k, v] of headers) if (!HOP_BY_HOP.has(k.toLowerCase())) head += `${k}: ${v}\r\n`;
  head += `content-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n`;
  return concat(encoder.encode(head), body);
}

export function startFaultProxy(options: FaultProxyOptions): FaultProxy {
  let plan = options.plan ?? (() => ({ kind: "forward" }) as FaultAction);
  let afterUpstream = options.afterUpstream;
  let calls = 0;
  let inFlight = 0;
  const log: ProxyLogEntry[] = [];
  const upstream = options.upstream.replace(/\/+$/, "");
  const states = new WeakMap<Socket<undefined>, ConnState>();

  const write = (s: Socket<undefined>, st: ConnState, bytes: Uint8Array) => {
    if (st.closed) return;
    if (st.out.length > 0) {
      st.out.push(bytes);
      return;
    }
    const n = s.write(bytes);
    if (n < bytes.length) st.out.push(bytes.subarray(Math.max(0, n)));
  };

  async function handle(s: Socket<undefined>, st: ConnState): Promise<void> {
    while (!st.closed) {
      let parsed: ReturnType<typeof parseRequest>;
      try {
        parsed = parseRequest(st.buf);
      } catch {
        s.terminate();
        return;
      }
      if (!parsed) return;
      st.buf = st.buf.slice(parsed.size);
      const req: ProxiedRequest = { n: ++calls, method: parsed.method, path: parsed.path, body: parsed.body };
      inFlight++;
      try {
        const action = await plan(req);
        const entry: ProxyLogEntry = { n: req.n, path: req.path, action: action.kind, upstream: null, at: Date.now() };
        log.push(entry);
        if (action.kind === "stall") {
          st.stalled = true;
          return;
        }
        if (action.kind === "drop") {
          s.terminate();
          return;
        }
        if (action.kind === "status") {
          const headers: [string, string][] = [["content-type", "application/json"]];
          if (action.retryAfter !== undefined) headers.push(["retry-after", action.retryAfter]);
          write(
            s,
            st,
            httpResponse(
              action.status,
              headers,
              encoder.encode(JSON.stringify({ error: { code: "FAULT", message: `fault proxy: ${action.status}` } })),
            ),
          );
          continue;
        }
        if (action.kind === "forward" && action.delayMs) await Bun.sleep(action.delayMs);
        let res: Response;
        let body: Uint8Array;
        try {
          res = await fetch(`${upstream}${req.path}`, {
            method: req.method,
            headers: parsed.headers.filter(([k]) => !HOP_BY_HOP.has(k)),
            body: req.method === "GET" || req.method === "HEAD" ? undefined : (req.body as Uint8Array<ArrayBuffer>),
          });
          body = new Uint8Array(await res.arrayBuffer());
        } catch {
          s.terminate();
          return;
        }
        entry.upstream = res.status;
        await afterUpstream?.(req, res.status);
        if (st.closed) return;
        if (action.kind === "commit-then-drop") {
          s.terminate();
          return;
        }
        if (action.kind === "commit-then-stall") {
          st.stalled = true;
          return;
        }
        if (action.kind === "commit-then-status") {
          write(
            s,
            st,
            httpResponse(
              action.status,
              [["content-type", "application/json"]],
              encoder.encode('{"error":{"code":"FAULT","message":"lost"}}'),
            ),
          );
          continue;
        }
        const full = httpResponse(res.status, [...res.headers], body);
        if (action.kind === "truncate") {
          write(s, st, full.subarray(0, full.length - Math.max(1, Math.floor(body.length / 2))));
          s.terminate();
          return;
        }
        write(s, st, full);
      } finally {
        inFlight--;
      }
    }
  }

  const server: TCPSocketListener<undefined> = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        states.set(s, { buf: new Uint8Array(0), busy: false, stalled: false, out: [], closed: false });
      },
      data(s, chunk) {
        const st = states.get(s)!;
        st.buf = concat(st.buf, chunk);
        if (st.busy || st.stalled) return;
        st.busy = true;
        void handle(s, st).finally(() => (st.busy = false));
      },
      drain(s) {
        const st = states.get(s)!;
        while (st.out.length > 0) {
          const next = st.out[0]!;
          const n = s.write(next);
          if (n < next.length) {
            st.out[0] = next.subarray(Math.max(0, n));
            return;
          }
          st.out.shift();
        }
      },
      close(s) {
        const st = states.get(s);
        if (st) st.closed = true;
      },
      error(s) {
        const st = states.get(s);
        if (st) st.closed = true;
      },
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}`,
    calls: () => calls,
    inFlight: () => inFlight,
    log,
    setPlan(next) {
      plan = next ?? (() => ({ kind: "forward" }));
    },
    setAfterUpstream(hook) {
      afterUpstream = hook;
    },
    stop() {
      server.stop(true);
    },
  };
}
