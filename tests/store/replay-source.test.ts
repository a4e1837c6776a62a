import { expect, test } from "bun:test";
import { openReplaySource } from "../../src/store/replay-source.ts";
import { openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

test("openReplaySource() pages exactly what listJson() gives, on its own read-only connection, never past throughSeq", async () => {
  const dir = tempDir("zoe-replay-source-");
  const store = openStore({ path: dir.file("zoe.db") });
  const source = openReplaySource(store.path);
  try {
    await store.append(
      Array.from({ length: 30 }, (_, i) => ({
        mode: i % 3 === 0 ? ("live" as const) : ("paper" as const),
        source: "bot",
        type: "T",
        subtype: "X",
        body: `event ${i} "quoted" \u2028`,
        meta: { i, nested: [{ a: 1e-7 }] },
      })),
    );
    for (const mode of ["live", "paper"] as const) {
      const last = store.lastSeq(mode);
      expect(source.pageJson(mode, 0, last, 100)).toEqual(store.listJson(mode, 0, 100));
      expect(source.pageJson(mode, 2, last, 5)).toEqual(store.listJson(mode, 2, 5));
      expect(source.pageJson(mode, 0, 4, 100).map(([seq]) => seq)).toEqual([1, 2, 3, 4]);
    }
    expect(() => source.pageJson("live", 0, 1, 1)).not.toThrow();
  } finally {
    source.close();
    store.close();
    dir.cleanup();
  }
});
