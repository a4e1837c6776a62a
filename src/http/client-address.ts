// The socket a request came on. Bun knows a request's peer address and its
// connection (server.requestIP, server.timeout) only for the Request object it
// made itself; a Request rebuilt from it (withRoutablePath) is unknown to Bun.
// serveApp records each rebuilt request's original here, so a rebuilt request
// still has its client's address: without it a client would count as unknown
// and, say, slip past the per-address stream cap.
const originals = new WeakMap<Request, Request>();

/** Records that `rebuilt` stands for `original`, the request Bun's server made. */
export function rememberOriginal(rebuilt: Request, original: Request): void {
  if (rebuilt !== original) originals.set(rebuilt, originals.get(original) ?? original);
}

/** The request Bun's server made for `request`: itself, unless it was rebuilt. */
export function originalRequest(request: Request): Request {
  return originals.get(request) ?? request;
}

interface PeerServer {
  requestIP(request: Request): { address: string } | null;
}

/** The client's address, from the socket (null without a server: app.handle in tests, a Unix socket). */
export function clientAddress(server: PeerServer | null | undefined, request: Request): string | null {
  return server?.requestIP(originalRequest(request))?.address ?? null;
}
