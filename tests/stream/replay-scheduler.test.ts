import { expect, test } from "bun:test";
import { createReplayScheduler } from "../../src/stream/replay-scheduler.ts";

const nextIteration = () => new Promise<void>((r) => setImmediate(r));

test("createReplayScheduler() runs steps in request order, a step asked for again queuing behind the others", async () => {
  const scheduler = createReplayScheduler({ sliceMs: 1000 });
  const log: string[] = [];
  let rounds = 0;
  const a = () => {
    log.push("a");
    if (++rounds < 3) scheduler.request(a);
    return 0;
  };
  scheduler.request(a);
  scheduler.request(() => log.push("b") && 0);
  scheduler.request(() => log.push("c") && 0);
  expect(log).toEqual([]); // later, never inside request()
  expect(scheduler.waiting).toBe(3);
  for (let i = 0; i < 5 && scheduler.waiting > 0; i++) await nextIteration();
  expect(log).toEqual(["a", "b", "c", "a", "a"]);
  expect(scheduler.waiting).toBe(0);
});

test("createReplayScheduler() hands the loop back once a step spends the slice: other work runs between turns", async () => {
  let clock = 0;
  const scheduler = createReplayScheduler({ sliceMs: 1, now: () => clock });
  const log: string[] = [];
  for (const name of ["s1", "s2", "s3"])
    scheduler.request(() => {
      log.push(name);
      clock += 1; // each step takes the whole slice
      return 0;
    });
  setImmediate(() => log.push("request"));
  setImmediate(() => log.push("commit"));
  for (let i = 0; i < 5 && scheduler.waiting > 0; i++) await nextIteration();
  expect(log.slice(0, 4)).toEqual(["s1", "request", "commit", "s2"]);
  expect(log).toContain("s3");
});

test("createReplayScheduler() runs quick steps together within one slice", async () => {
  const scheduler = createReplayScheduler({ sliceMs: 1000 });
  const log: string[] = [];
  for (const name of ["s1", "s2", "s3"]) scheduler.request(() => log.push(name) && 0);
  setImmediate(() => log.push("other"));
  await nextIteration();
  await nextIteration();
  expect(log).toEqual(["s1", "s2", "s3", "other"]);
});

test("createReplayScheduler(): a step that throws does not stop the others", async () => {
  const scheduler = createReplayScheduler({ sliceMs: 1000 });
  const log: string[] = [];
  const error = console.error;
  console.error = () => {};
  try {
    scheduler.request(() => {
      throw new Error("boom");
    });
    scheduler.request(() => log.push("after") && 0);
    await nextIteration();
    await nextIteration();
  } finally {
    console.error = error;
  }
  expect(log).toEqual(["after"]);
});

test("createReplayScheduler() hands the loop back once the steps enqueued the slice's bytes: their socket writes come before more", async () => {
  const scheduler = createReplayScheduler({ sliceMs: 1000, sliceBytes: 100 });
  const log: string[] = [];
  for (const name of ["p1", "p2", "p3"])
    scheduler.request(() => {
      log.push(name);
      return 60;
    });
  setImmediate(() => log.push("write"));
  for (let i = 0; i < 5 && scheduler.waiting > 0; i++) await nextIteration();
  expect(log).toEqual(["p1", "p2", "write", "p3"]);
});
