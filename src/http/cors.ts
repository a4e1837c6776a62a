// CORS for the browser clients (the dashboard on another origin, a web UI in
// development): exact origins from ZOE_CORS_ORIGINS, no credentials.
import { cors } from "@elysiajs/cors";

export function corsPolicy(origins: readonly string[]) {
  const allowed = new Set(origins);
  return cors({
    // Exact match only. Given a list, @elysiajs/cors tests `origin in {…}`,
    // which also reflects "constructor", "__proto__" and other Object.prototype names.
    origin: (request) => allowed.has(request.headers.get("origin") ?? ""),
    credentials: false,
    methods: ["GET", "POST", "OPTIONS"],
    allowedHeaders: ["Content-Type", "Authorization", "Last-Event-ID"],
    exposeHeaders: ["Retry-After"],
    maxAge: 600,
  });
}
