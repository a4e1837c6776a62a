// Which methods a path is served with, for the 405 answer's Allow header:
// read from the app's own route table, so a route added anywhere (a plugin,
// the operator routes) is known without a list kept by hand.

export interface RouteEntry {
  method: string;
  path: string;
}

const ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** Elysia's path syntax (`:id`, `:id?`, `*`) as an anchored regular expression. */
function pathPattern(path: string): RegExp {
  const source = path
    .split("/")
    .map((part) =>
      part === "*"
        ? ".*"
        : part.startsWith(":")
          ? part.endsWith("?")
            ? "[^/]*"
            : "[^/]+"
          : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
    )
    .join("/");
  return new RegExp(`^${source}$`);
}

/**
 * Returns the Allow value of a path ("GET, HEAD, OPTIONS"), or null for a
 * path no route serves. Elysia answers HEAD for every GET route, and the CORS
 * preflight answers OPTIONS on every path: both are in every list. The
 * catch-all OPTIONS routes of the preflight make no path known.
 */
export function methodTable(routes: readonly RouteEntry[]): (pathname: string) => string | null {
  const byPath = new Map<string, Set<string>>();
  for (const r of routes) {
    if (r.method === "OPTIONS") continue;
    const methods = byPath.get(r.path) ?? new Set<string>();
    if (r.method === "ALL") for (const m of ORDER) methods.add(m);
    methods.add(r.method);
    if (r.method === "GET") methods.add("HEAD");
    byPath.set(r.path, methods);
  }
  const table = [...byPath].map(([path, methods]) => ({ pattern: pathPattern(path), methods }));
  return (pathname) => {
    // Elysia is not strict about a trailing slash: "/local/events/" is "/local/events".
    const path = pathname.length > 1 && pathname.endsWith("/") ? pathname.slice(0, -1) : pathname;
    const allowed = new Set<string>();
    for (const entry of table) if (entry.pattern.test(path)) for (const m of entry.methods) allowed.add(m);
    if (allowed.size === 0) return null;
    allowed.add("OPTIONS");
    return [...ORDER.filter((m) => allowed.has(m)), ...[...allowed].filter((m) => !ORDER.includes(m))].join(", ");
  };
}
