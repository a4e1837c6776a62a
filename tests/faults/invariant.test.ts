// The checker must catch what it exists to catch: each test breaks one clause
// of the invariant in otherwise sound data and expects a violation naming it.
import { describe, expect, test } from "bun:test";
import type { Ack, Intent } from "../helpers/bot.ts";
import { type EventRow, findViolations, type InvariantInput, type LocalRow } from "../helpers/invariant.ts";

function sound(): InvariantInput {
  const intents = new Map<string, Intent>();
  const acks: Ack[] = [];
  const local: LocalRow[] = [];
  const remote: EventRow[] = [];
  for (let i = 1; i <= 6; i++) {
    const mode = i % 2 ? "live" : "paper";
    const seq = Math.ceil(i / 2);
    const key = `k${i}`;
    intents.set(key, { key, mode, subtype: "TICK", body: key });
    const row = { id: `id${i}`, mode, seq, idempotency_key: key, body: key } as const;
    local.push({ ...row, flushed: 1 });
    remote.push({ ...row });
    if (i !== 6) acks.push({ key, id: row.id, seq, mode, duplicate: false }); // k6: stored, never acknowledged
  }
  intents.set("k7", { key: "k7", mode: "live", subtype: "TICK", body: "k7" }); // sent, never stored
  return { intents, acks, local, remote, integrity: "ok" };
}

describe("findViolations()", () => {
  test("accepts sound stores, including stored-but-unacknowledged and sent-but-unstored events", () => {
    expect(findViolations(sound())).toEqual([]);
  });

  test("reports an acknowledged event missing from Postgres as LOST", () => {
    const s = sound();
    s.remote = s.remote.filter((r) => r.idempotency_key !== "k3");
    expect(findViolations(s).join("\n")).toContain("LOST: k3 acknowledged as live/2 is not in the remote store");
  });

  test("reports an acknowledged event stored with another seq", () => {
    const s = sound();
    s.acks[0] = { ...s.acks[0]!, seq: 9 };
    expect(findViolations(s).join("\n")).toContain("k1 acknowledged as live/9");
  });

  test("reports a duplicated row (same body under another key) and the seq clash it makes", () => {
    const s = sound();
    s.intents.set("k1-again", { key: "k1-again", mode: "live", subtype: "TICK", body: "k1" });
    s.remote.push({ id: "idX", mode: "live", seq: 1, idempotency_key: "k1-again", body: "k1" });
    const text = findViolations(s).join("\n");
    expect(text).toContain("remote: body k1 appears twice");
    expect(text).toContain("remote live: seq 1 is held twice");
  });

  test("reports a gap in a mode's seqs", () => {
    const s = sound();
    s.local = s.local.filter((r) => r.idempotency_key !== "k4");
    s.remote = s.remote.filter((r) => r.idempotency_key !== "k4");
    expect(findViolations(s).join("\n")).toContain("paper: seqs are not gapless");
  });

  test("accepts a jump to the start of a later seq range; reports a jump that starts no range, and a range recorded twice", () => {
    const s = sound();
    const jump = (rows: EventRow[]) =>
      rows.map((r) => (r.mode === "live" && r.seq === 3 ? { ...r, seq: 1_796_659_575_835_000 } : r));
    s.local = jump(s.local) as LocalRow[];
    s.remote = jump(s.remote);
    s.acks = s.acks.map((a) => (a.key === "k5" ? { ...a, seq: 1_796_659_575_835_000 } : a));
    s.ranges = { live: [1, 1_796_659_575_835_000], paper: [1] };
    expect(findViolations(s)).toEqual([]);
    s.ranges = { live: [1], paper: [1] };
    expect(findViolations(s).join("\n")).toContain(
      "local live: seqs are not gapless: 2 is followed by 1796659575835000, which starts no range",
    );
    s.ranges = { live: [1, 1, 1_796_659_575_835_000], paper: [1] };
    expect(findViolations(s).join("\n")).toContain("local live: range 1 recorded twice");
  });

  test("reports two acknowledgements of one key that disagree", () => {
    const s = sound();
    s.acks.push({ ...s.acks[1]!, seq: 5, duplicate: true });
    expect(findViolations(s).join("\n")).toContain("ack k2: acknowledged as paper/1");
  });

  test("reports a failed integrity check, an unflushed or quarantined event, and a row nobody sent", () => {
    const s = sound();
    s.integrity = "*** in database main ***\nPage 5 is never used";
    s.local[0] = { ...s.local[0]!, flushed: 0 };
    s.local[1] = { ...s.local[1]!, flushed: 2 };
    s.remote.push({ id: "idZ", mode: "live", seq: 4, idempotency_key: "ghost", body: "ghost" });
    const text = findViolations(s).join("\n");
    expect(text).toContain("local integrity_check: *** in database main");
    expect(text).toContain("live/1 is still unflushed");
    expect(text).toContain("paper/1 is quarantined");
    expect(text).toContain("ghost, which the client never sent");
  });
});
