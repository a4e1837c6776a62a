// Deno entry used by the local stack: runs a function's real index.ts and
// exits when its stdin closes, i.e. when the stack's process is gone, so a
// killed test run never leaves a Deno server behind.
declare const Deno: { args: string[]; stdin: { readable: ReadableStream<Uint8Array> }; exit(code: number): never };

const entry = Deno.args[0];
if (!entry) throw new Error("usage: function-host.ts <file:///…/index.ts>");
void (async () => {
  try {
    for await (const _ of Deno.stdin.readable);
  } finally {
    Deno.exit(0);
  }
})();
await import(entry);
export {};
