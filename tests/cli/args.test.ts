import { expect, test } from "bun:test";
import { parseEnvFile } from "../../src/cli/env-file.ts";
import { serviceUrl } from "../../src/cli/main.ts";
import { progressBar } from "../../src/cli/format.ts";

test("parseEnvFile() reads a systemd EnvironmentFile: comments, quotes, export, blank lines", () => {
  const text = `# comment\n; also a comment\n\nHOST=0.0.0.0\nexport PORT = 9000\nZOE_API_TOKEN="a \\"quoted\\" secret"\nSUPABASE_URL='https://x.supabase.co'\nEMPTY=\n`;
  expect(parseEnvFile(text)).toEqual({
    HOST: "0.0.0.0",
    PORT: "9000",
    ZOE_API_TOKEN: 'a "quoted" secret',
    SUPABASE_URL: "https://x.supabase.co",
    EMPTY: "",
  });
  expect(() => parseEnvFile("PORT 9000", "/etc/zoe-local/zoe-local.env")).toThrow(
    '/etc/zoe-local/zoe-local.env:1: expected KEY=VALUE, got "PORT 9000"',
  );
});

test("serviceUrl(): --url, then ZOE_URL, then the service's own HOST and PORT, reached on loopback for a wildcard bind", () => {
  expect(serviceUrl("http://box:1/", { ZOE_URL: "http://other:2" })).toBe("http://box:1");
  expect(serviceUrl(undefined, { ZOE_URL: "http://other:2", PORT: "3" })).toBe("http://other:2");
  expect(serviceUrl(undefined, { HOST: "0.0.0.0", PORT: "9000" })).toBe("http://127.0.0.1:9000");
  expect(serviceUrl(undefined, { HOST: "::1" })).toBe("http://[::1]:8765");
  expect(serviceUrl(undefined, { HOST: "192.168.1.20", PORT: "8765" })).toBe("http://192.168.1.20:8765");
  expect(serviceUrl(undefined, {})).toBe("http://127.0.0.1:8765");
});

test("progressBar() fills with the share done and estimates the time left from the rate", () => {
  expect(progressBar(0, 1000, null, 10)).toBe("[░░░░░░░░░░]   0%  0 of 1,000");
  expect(progressBar(500, 1000, 250, 10)).toBe("[█████░░░░░]  50%  500 of 1,000  250 ev/s  ETA 2s");
  expect(progressBar(1000, 1000, 250, 10)).toBe("[██████████] 100%  1,000 of 1,000  250 ev/s");
});
