// What a Host header (or a host setting) names: a DNS name, an IPv4 address
// or a bracketed IPv6 address, and an optional port. Anything else (`a?`,
// `x y`, port 99999) is not a host; new URL() would throw on it.

// Letters, digits, '-', '_' and dots (a trailing dot allowed), or [IPv6]; then :port.
const HOST = /^(?:([a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?)\.?|(\[[0-9a-f:.]+\]))(?::(\d{0,5}))?$/i;

/** The lower-case name of a Host value without its port, or null when it is not a host. */
export function hostName(value: string): string | null {
  const m = HOST.exec(value);
  if (!m) return null;
  if (m[3] !== undefined && m[3] !== "" && Number(m[3]) > 65535) return null;
  return (m[1] ?? m[2]!).toLowerCase();
}
