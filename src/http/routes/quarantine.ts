// GET /local/quarantine and POST /local/quarantine/retry: the poison events
// the flusher set aside, and putting them back in the flush queue after a fix.
// Without a flusher there is no quarantine: both answer 404.
import { Elysia } from "elysia";
import { NotFoundError } from "../../domain/errors.ts";
import { checkRetryInput, type QuarantineSource } from "../../flush/quarantine.ts";
import { readJsonBody } from "../body.ts";
import { eventsQuery } from "../query.ts";
import { routeDocs } from "../openapi.ts";
import { json } from "../responses.ts";

export interface QuarantineRoutesOptions {
  quarantine?: QuarantineSource;
  maxRequestBytes: number;
}

export function quarantineRoutes(options: QuarantineRoutesOptions) {
  return new Elysia({ name: "zoe-quarantine" })
    .get(
      "/local/quarantine",
      ({ request }) => {
        const q = eventsQuery(new URL(request.url));
        const source = options.quarantine;
        if (!source) throw new NotFoundError("No quarantine: this service has no flusher");
        return json({
          mode: q.mode,
          count: source.count(q.mode),
          events: source.list(q.mode, { limit: q.limit, afterSeq: q.sinceSeq }),
        });
      },
      { detail: routeDocs["GET /local/quarantine"] },
    )
    .post(
      "/local/quarantine/retry",
      async ({ request }) => {
        const source = options.quarantine;
        if (!source) throw new NotFoundError("No quarantine: this service has no flusher");
        const { mode, ids } = checkRetryInput(await readJsonBody(request, options.maxRequestBytes, "quarantine retry"));
        const released = source.retry(mode, ids);
        return json({ mode, released, quarantined: source.count(mode) });
      },
      {
        parse: "none",
        detail: routeDocs["POST /local/quarantine/retry"],
      },
    );
}
