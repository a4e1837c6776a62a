// The raw HTTP limit: a bare Bun.serve handler that parses a JSON body and
// answers JSON, as the service's ingest route does, with no framework,
// validation or storage. Prints "bare server listening on <url>".
let seq = 0;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(request) {
    const body = (await request.json()) as { idempotency_key?: string };
    seq++;
    return Response.json(
      { id: "bare", seq, idempotency_key: body.idempotency_key ?? "bare", duplicate: false },
      { status: 201 },
    );
  },
});
console.log(`bare server listening on http://127.0.0.1:${server.port}`);
process.on("SIGTERM", () => {
  void server.stop(true);
  process.exit(0);
});
