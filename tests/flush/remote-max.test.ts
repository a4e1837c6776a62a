import { afterEach, expect, test } from "bun:test";
import { fetchRemoteMaxSeqs } from "../../src/flush/remote-max.ts";

const servers: ReturnType<typeof Bun.serve>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop(true);
});
function serve(fetch: (req: Request) => Response | Promise<Response>) {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 0, fetch });
  servers.push(s);
  return `http://127.0.0.1:${s.port}`;
}

test("fetchRemoteMaxSeqs() reads each mode's highest seq (0 for none) with the service key", async () => {
  const asked: string[] = [];
  const url = serve((req) => {
    const u = new URL(req.url);
    asked.push(`${u.pathname}?${u.searchParams.toString()} ${req.headers.get("apikey")}`);
    return Response.json(u.searchParams.get("mode") === "eq.live" ? [{ seq: 1_796_659_575_835_004 }] : []);
  });
  expect(await fetchRemoteMaxSeqs({ url, serviceKey: "service-key-0123456789" })).toEqual({
    seqs: new Map([
      ["paper", 0],
      ["live", 1_796_659_575_835_004],
    ]),
  });
  expect(asked.sort()).toEqual([
    "/rest/v1/zoe_events?select=seq&mode=eq.live&order=seq.desc&limit=1 service-key-0123456789",
    "/rest/v1/zoe_events?select=seq&mode=eq.paper&order=seq.desc&limit=1 service-key-0123456789",
  ]);
});

test("fetchRemoteMaxSeqs() gives up on a remote that does not answer in time, and names an error answer without the key", async () => {
  const hung = serve(() => new Promise<Response>(() => {}));
  expect(await fetchRemoteMaxSeqs({ url: hung, serviceKey: "k".repeat(20), timeoutMs: 200 })).toEqual({
    seqs: null,
    reason: "no answer within 200 ms",
  });
  const key = "service-key-abcdefghijkl";
  const echo = serve((req) => new Response(`bad gateway for ${req.headers.get("apikey")}`, { status: 502 }));
  const answer = await fetchRemoteMaxSeqs({ url: echo, serviceKey: key });
  expect(answer.seqs).toBeNull();
  expect((answer as { reason: string }).reason).toMatch(
    /^GET zoe_events \((paper|live)\): 502 bad gateway for \[redacted\]$/,
  );
});
