// Ships batches to the zoe-ingest Edge Function, which validates every event
// with the shared schema and writes the batch in one transaction. Contract:
// POST {url}/functions/v1/{name} {mode, events, backlog, state} →
// 200 {results:[{idempotency_key, seq, status, errors?}], accepted, duplicates, rejected}.
import { ERROR_CODES, errorCodeOf } from "../../../supabase/functions/_shared/error-codes.ts";
import type { Clock } from "../../lib/clock.ts";
import {
  type EncodedSinkBatch,
  type EventRef,
  type EventResult,
  fetchFailure,
  isRetryableStatus,
  redactCredentials,
  RemoteAuthError,
  RemoteOutOfOrderError,
  RemoteProtocolError,
  RemoteRejectedError,
  RemoteUnavailableError,
  retryAfterMs,
  type Sink,
  type SinkBatch,
  type SinkResult,
  type WriterIdentity,
  type WritersReport,
} from "../sink.ts";

export interface EdgeFunctionSinkOptions {
  /** SUPABASE_URL, e.g. https://xyz.supabase.co */
  url: string;
  /** Service-role key: sent as Bearer token and apikey. */
  serviceKey: string;
  functionName?: string;
  /** Optional shared secret the function also accepts (x-zoe-flush-secret). */
  secret?: string | null;
  timeoutMs: number;
  clock: Clock;
  fetch?: typeof fetch;
  /** Sent with every batch: the remote records it on each event and as the mode's writer. */
  writer?: WriterIdentity | null;
}

const VERDICTS = new Set(["accepted", "duplicate", "rejected"]);

// results[i] answers events[i]; the key is checked where present (the
// function answers null for an event it could not read one from).
function parseResults(body: unknown, events: readonly EventRef[], where: string): EventResult[] {
  const results = (body as { results?: unknown })?.results;
  if (!Array.isArray(results)) throw new RemoteProtocolError(`${where}: 2xx without a results array`);
  if (results.length !== events.length)
    throw new RemoteProtocolError(`${where}: ${results.length} results for ${events.length} events`);
  for (let i = 0; i < results.length; i++) {
    const r = results[i] as Record<string, unknown> | null;
    const key = r?.idempotency_key ?? events[i]!.idempotency_key;
    if (key !== events[i]!.idempotency_key || typeof r?.status !== "string" || !VERDICTS.has(r.status)) {
      throw new RemoteProtocolError(
        `${where}: result ${i} does not answer event seq ${events[i]!.seq}: ${JSON.stringify(r).slice(0, 200)}`,
      );
    }
    r.idempotency_key = key;
  }
  return results as EventResult[];
}

/** The 400 an older function answers to an envelope with a property it does not know (after_key, writer). */
function refusesProperty(details: unknown, path: string): boolean {
  const errors = (details as { errors?: { path?: unknown; message?: unknown }[] } | null)?.errors;
  return Array.isArray(errors) && errors.some((e) => e?.path === path && e?.message === "Unexpected property");
}

function writersOf(body: unknown): WritersReport | undefined {
  const w = (body as { writers?: unknown })?.writers as WritersReport | undefined;
  return w && typeof w === "object" ? w : undefined;
}

export function createEdgeFunctionSink(options: EdgeFunctionSinkOptions): Sink {
  const endpoint = `${options.url.replace(/\/+$/, "")}/functions/v1/${options.functionName ?? "zoe-ingest"}`;
  const doFetch = options.fetch ?? fetch;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    authorization: `Bearer ${options.serviceKey}`,
    apikey: options.serviceKey,
  };
  if (options.secret) headers["x-zoe-flush-secret"] = options.secret;

  // Until the function says it does not know after_key (a deployment older
  // than this service): then the flusher goes back to one batch at a time.
  let ordered = true;
  // Until the function says it does not know writer (deployed before store
  // identities): the batches then go without it, and the remote records no writer.
  let writer = options.writer ? `,"writer":${JSON.stringify(options.writer)}` : "";

  // The envelope around an events array already in JSON: one string concat,
  // no second encoding of the events.
  const envelope = (batch: EncodedSinkBatch) =>
    `{"mode":${JSON.stringify(batch.mode)},"events":${batch.json},"backlog":${JSON.stringify(batch.backlog)},"state":${JSON.stringify(batch.state)}${
      batch.afterKey == null ? "" : `,"after_key":${JSON.stringify(batch.afterKey)}`
    }${writer}}`;

  async function post(batch: EncodedSinkBatch): Promise<SinkResult> {
    const where = `POST ${endpoint} (${batch.mode}, ${batch.refs.length} events${batch.afterKey == null ? "" : ", after the batch before"})`;
    const body = envelope(batch);
    const signal = AbortSignal.any([batch.signal, AbortSignal.timeout(options.timeoutMs)]);
    let response: Response;
    let text: string;
    try {
      response = await doFetch(endpoint, { method: "POST", headers, body, signal });
      text = redactCredentials(await response.text(), [options.serviceKey, options.secret]);
    } catch (error) {
      throw fetchFailure(error, where, batch.signal, options.timeoutMs);
    }
    const status = response.status;
    let json: unknown;
    try {
      json = text === "" ? null : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (status >= 200 && status < 300) {
      if (json === undefined)
        throw new RemoteProtocolError(`${where}: ${status} with a body that is not JSON: ${text.slice(0, 200)}`, {
          remoteStatus: status,
        });
      const writers = writersOf(json);
      return writers
        ? { results: parseResults(json, batch.refs, where), writers }
        : { results: parseResults(json, batch.refs, where) };
    }
    const remote = (json as { error?: { code?: string; message?: string; details?: unknown } })?.error;
    const what = `${where}: ${status} ${remote?.code ?? ""} ${remote?.message ?? text.slice(0, 200)}`
      .replace(/\s+/g, " ")
      .trim();
    const common = { remoteStatus: status, details: remote?.details };
    const code = errorCodeOf(remote?.code);
    if (status === 409 && code === "predecessor_not_committed") throw new RemoteOutOfOrderError(what, common);
    if (status === 400 && writer !== "" && refusesProperty(remote?.details, "/writer")) {
      writer = "";
      return post(batch);
    }
    if (status === 400 && batch.afterKey != null && refusesProperty(remote?.details, "/after_key")) {
      ordered = false;
      throw new RemoteOutOfOrderError(
        `${what} (the deployed ${options.functionName ?? "zoe-ingest"} predates after_key: deploy it again for several batches in flight; one at a time until then)`,
        common,
      );
    }
    if (isRetryableStatus(status)) {
      throw new RemoteUnavailableError(what, {
        ...common,
        retryAfterMs: retryAfterMs(response.headers.get("retry-after"), options.clock.now()),
      });
    }
    if (status === 401 || status === 403) throw new RemoteAuthError(what, common);
    // Too large or too many: a smaller batch will pass, so let the flusher split.
    if (status === 413 || (code !== null && ERROR_CODES[code].splittable)) {
      throw new RemoteRejectedError(what, true, common);
    }
    if (status >= 400 && status < 500) throw new RemoteRejectedError(what, false, common);
    throw new RemoteProtocolError(what, common);
  }

  return {
    name: "edge",
    get ordered() {
      return ordered;
    },
    send: ({ events, ...rest }: SinkBatch) => post({ ...rest, refs: events, json: JSON.stringify(events) }),
    sendEncoded: post,
  };
}
