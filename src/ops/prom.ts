// prom-client's classes from their own files instead of the package index.
// The index also loads the cluster aggregator, the push gateway, summaries
// and OpenTelemetry (for exemplars): about 40 ms of Bun's start-up, before
// the service can answer /health, for code a local service never runs. The
// default process metrics (another ~30 ms) load after start-up, on first use.
// Types come from the package as usual.
import type * as Prom from "prom-client";
import CounterClass from "prom-client/lib/counter";
import GaugeClass from "prom-client/lib/gauge";
import HistogramClass from "prom-client/lib/histogram";
import RegistryClass from "prom-client/lib/registry";

export const Counter = CounterClass;
export const Gauge = GaugeClass;
export const Histogram = HistogramClass;
export const Registry = RegistryClass;
export type Registry = Prom.Registry;

/** prom-client's collectDefaultMetrics, imported when first asked for. */
export async function loadCollectDefaultMetrics(): Promise<typeof Prom.collectDefaultMetrics> {
  return (await import("prom-client/lib/defaultMetrics")).default;
}
