// Where the time of one single-event POST goes: the stages measured in one
// process by budget.ts (steady: no sockets, no load generator), set against
// the wire figures of the same run (the bare Bun.serve handler, and the
// service's CPU per event at 64 connections from the ingest section).
import type { BudgetResult } from "./budget.ts";
import type { LoadResult } from "./http-load.ts";
import { runJson } from "./lib.ts";
import type { RawResults } from "./section-raw.ts";
import { fmt, type Section } from "./section.ts";

const perRequestUs = (l: LoadResult | undefined) =>
  l && l.watchedCores !== null ? (l.watchedCores * 1e6) / l.requestsPerSecond : NaN;

export const budgetSection: Section = {
  id: "budget",
  title: "Per-event budget (single-event POST /local/events)",
  async run(ctx) {
    ctx.log("budget: stages of one request, in one process");
    const b = await runJson<BudgetResult>("budget.ts", { dir: ctx.dir, iterations: ctx.quick ? 5000 : 20000 });
    const raw = ctx.results.raw as RawResults | undefined;
    const ingest = ctx.results.ingest as { on: { load: LoadResult }[] } | undefined;
    const bare = perRequestUs(raw?.bareHttp);
    const service = perRequestUs(ingest?.on[1]?.load);
    const rows = Object.entries(b.stages).filter(([name]) => !name.startsWith("request object"));
    const counted = rows.filter(([name]) => !name.startsWith("(")).reduce((s, [, us]) => s + Math.max(0, us), 0);
    return {
      table: [
        ["stage", "µs per event"],
        ["Bun HTTP: parse, dispatch, write (bare Bun.serve JSON handler on the wire, 64 conns, CPU)", fmt.ms(bare)],
        ...rows.map(([name, us]) => [name, fmt.ms(Math.max(0, us))]),
        [
          "sum of the stages above (without the parenthesised comparisons)",
          fmt.ms(counted + (Number.isFinite(bare) ? bare : 0)),
        ],
        ["the service on the wire, 64 conns (ingest section, CPU per event)", fmt.ms(service)],
        [
          "whole handler in one process: precompiled / through Elysia's app.handle (store included, CPU)",
          `${fmt.ms(b.directHandleUs)} / ${fmt.ms(b.elysiaHandleUs)}`,
        ],
      ],
      targets: [],
      analysis: [
        `Measured with ZOE_SYNCHRONOUS=${b.synchronous}. The store's share is SQLite itself (the INSERT into a table with four indexes, then COMMIT writing the group's pages to the WAL with two pwrite calls per page) plus, with FULL, the WAL's fdatasync, whose CPU is the kernel's and runs on Bun's thread pool, not on the event loop (src/store/wal-sync.ts). Everything else is per request on the one JS thread.`,
        `The precompiled handler (src/http/ingest.ts) saves ${fmt.ms(b.elysiaHandleUs - b.directHandleUs)} µs a request against Elysia's app.handle: the per-request context, hooks, CORS headers computed per request and a second Response to merge them. A 1,000-event batch amortises all of it but the store: see the batched section.`,
        "The stage figures come from one process with nothing else to do; the wire figures are from the same run's load tests on the shared machine, so the sum and the service's CPU per event agree only roughly.",
      ],
    };
  },
};
