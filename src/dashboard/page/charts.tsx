// The "Last hour" panel: backlog of both modes, flush latency and ingest rate
// of the page's mode, as hand-drawn SVG (React creates the elements through
// the DOM, which the page's CSP allows; colours come from the stylesheet, no
// style attributes). The geometry is chart-geometry.ts; this file only lays
// it out. Each chart keeps a fixed set of elements per series, so refreshes
// update attributes instead of piling up nodes.
import type { Mode } from "../../client/types.ts";
import type { HistoryView } from "../../ops/history.ts";
import { chartGeometry, clockText, type SeriesInput, tickText, wrapText } from "./chart-geometry.ts";
import { zoneText } from "./format.ts";
import type { HistoryState } from "./use-history.ts";

export const CHART_SIZE = { width: 360, height: 150 };
const MESSAGE_FONT_PX = 12;

interface ChartSpec {
  id: "backlog" | "latency" | "ingest";
  title: string;
  unit: string;
  series: SeriesInput[];
}

function specs(views: Record<Mode, HistoryView>, mode: Mode): ChartSpec[] {
  const v = views[mode];
  return [
    {
      id: "backlog",
      title: "Backlog",
      unit: "events",
      series: (["paper", "live"] as const).map((m) => ({ name: m, t: views[m].t, values: views[m].backlog })),
    },
    {
      id: "latency",
      title: `Flush latency (${mode})`,
      unit: "ms",
      series: [
        { name: "mean", t: v.t, values: v.flush_ms_avg },
        { name: "max", t: v.t, values: v.flush_ms_max },
      ],
    },
    {
      id: "ingest",
      title: `Ingest rate (${mode})`,
      unit: "events/s",
      series: [
        { name: "stored", t: v.t, values: v.ingest_per_s },
        { name: "flushed", t: v.t, values: v.flushed_per_s },
      ],
    },
  ];
}

const EMPTY_SPECS: ChartSpec[] = [
  { id: "backlog", title: "Backlog", unit: "events", series: [] },
  { id: "latency", title: "Flush latency", unit: "ms", series: [] },
  { id: "ingest", title: "Ingest rate", unit: "events/s", series: [] },
];

function unavailableText(state: HistoryState): string | null {
  if (state.status === "connecting") return "connecting to the local service…";
  if (state.status === "unreachable") return "the local service is unreachable: its history is not available";
  if (state.status === "loading") return "loading…";
  if (state.status === "error") return `history not available: ${state.error}`;
  return null;
}

export function HistoryPanel({ state, mode }: { state: HistoryState; mode: Mode }) {
  const views = state.status === "ok" ? state.views : null;
  const windowMs = views?.[mode].window_ms ?? 3_600_000;
  const every = views ? ` · a sample every ${tickText(views[mode].interval_ms / 1000)} s` : "";
  const zone = ` · times in ${zoneText(new Date())}`;
  return (
    // The newest sample of each mode, so a test can ask the service for exactly the samples drawn.
    <section
      className="panel history"
      data-testid="history"
      data-state={state.status}
      data-paper-t={views?.paper.t.at(-1) ?? ""}
      data-live-t={views?.live.t.at(-1) ?? ""}
    >
      <h2>
        Last hour{" "}
        <span className="muted small">
          from the local service's memory{every}
          {zone}
        </span>
      </h2>
      <div className="charts">
        {(views ? specs(views, mode) : EMPTY_SPECS).map((spec) => (
          <Chart key={spec.id} spec={spec} windowMs={windowMs} unavailable={unavailableText(state)} />
        ))}
      </div>
    </section>
  );
}

function currentText(spec: ChartSpec, lasts: ({ value: number } | null)[]): string {
  const parts = spec.series.map((s, i) => `${s.name} ${lasts[i] ? tickText(lasts[i]!.value) : "—"}`);
  return `${parts.join(" · ")} ${spec.unit}`;
}

function Chart({ spec, windowMs, unavailable }: { spec: ChartSpec; windowMs: number; unavailable: string | null }) {
  const g = chartGeometry(spec.series, CHART_SIZE, { windowMs });
  const message = unavailable ?? (g.empty ? "no data yet" : null);
  const { plot } = g;
  return (
    <figure className={`chart chart-${spec.id}`} data-testid={`chart-${spec.id}`} data-empty={message !== null}>
      <figcaption>
        <b>{spec.title}</b> <span className="muted small">({spec.unit})</span>
        <span className="now" data-testid={`chart-${spec.id}-now`}>
          {message === null
            ? currentText(
                spec,
                g.series.map((s) => s.last),
              )
            : ""}
        </span>
      </figcaption>
      <svg
        viewBox={`0 0 ${CHART_SIZE.width} ${CHART_SIZE.height}`}
        role="img"
        aria-label={`${spec.title} in ${spec.unit}, last hour`}
      >
        <line className="axis" x1={plot.left} y1={plot.bottom} x2={plot.right} y2={plot.bottom} />
        <line className="axis" x1={plot.left} y1={plot.top} x2={plot.left} y2={plot.bottom} />
        {message === null &&
          g.y.ticks.map((tick, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: a tick is its place on the axis; keys by place keep the node count fixed
            <g key={`y${i}`} className="tick">
              <line className="grid-line" x1={plot.left} y1={tick.at} x2={plot.right} y2={tick.at} />
              <text x={plot.left - 4} y={tick.at} textAnchor="end" dominantBaseline="middle">
                {tickText(tick.value)}
              </text>
            </g>
          ))}
        {message === null &&
          g.x.ticks.map((tick, i) => (
            <text
              // biome-ignore lint/suspicious/noArrayIndexKey: a tick is its place on the axis; keys by place keep the node count fixed
              key={`x${i}`}
              className="tick"
              x={tick.at}
              y={CHART_SIZE.height - 4}
              textAnchor={i === 0 && g.x.ticks.length > 1 ? "start" : i === g.x.ticks.length - 1 ? "end" : "middle"}
            >
              {clockText(tick.value)}
            </text>
          ))}
        {message === null &&
          g.series.map((s, i) => (
            <g
              key={s.name}
              className={`series series-${i}`}
              data-series={s.name}
              data-points={s.points}
              data-last-t={s.last?.t ?? ""}
            >
              <path d={s.d} />
              {s.last && <circle cx={s.last.x} cy={s.last.y} r={2.5} />}
            </g>
          ))}
        {message !== null && (
          <MessageText
            id={spec.id}
            text={message}
            x={(plot.left + plot.right) / 2}
            y={(plot.top + plot.bottom) / 2}
            width={plot.right - plot.left - 8}
          />
        )}
      </svg>
      {message === null && (
        <div className="legend">
          {spec.series.map((s, i) => (
            <span key={s.name} className={`key series-${i}`}>
              {s.name}
            </span>
          ))}
        </div>
      )}
    </figure>
  );
}

/** A message centred in the plot, wrapped so it never runs past the axes. */
function MessageText({ id, text, x, y, width }: { id: string; text: string; x: number; y: number; width: number }) {
  const lines = wrapText(text, width, MESSAGE_FONT_PX);
  const lineHeight = MESSAGE_FONT_PX * 1.25;
  return (
    <text
      className="message"
      data-testid={`chart-${id}-message`}
      x={x}
      y={y - ((lines.length - 1) * lineHeight) / 2}
      textAnchor="middle"
      dominantBaseline="middle"
    >
      {lines.map((line, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: a line is its place in the message
        <tspan key={i} x={x} dy={i === 0 ? 0 : lineHeight}>
          {/* The space keeps the message's text whole for screen readers and copy. */}
          {i < lines.length - 1 ? `${line} ` : line}
        </tspan>
      ))}
    </text>
  );
}
