import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Window } from "happy-dom";
import { act, createElement } from "react";
import { createRoot, type Root } from "react-dom/client";
import type { Mode } from "../../src/client/types.ts";
import { HistoryPanel } from "../../src/dashboard/page/charts.tsx";
import type { HistoryState } from "../../src/dashboard/page/use-history.ts";
import type { HistoryView } from "../../src/ops/history.ts";

// React DOM needs a window and a document; happy-dom provides them for this file only.
const g = globalThis as Record<string, unknown>;
let win: Window;
let root: Root;
let host: HTMLElement;
beforeAll(() => {
  win = new Window();
  g.window = win;
  g.document = win.document;
  g.IS_REACT_ACT_ENVIRONMENT = true;
  host = win.document.createElement("div") as unknown as HTMLElement;
  win.document.body.appendChild(host as never);
  root = createRoot(host);
});
afterAll(async () => {
  act(() => root.unmount());
  delete g.window;
  delete g.document;
  delete g.IS_REACT_ACT_ENVIRONMENT;
  await win.happyDOM.close();
});

function view(
  mode: Mode,
  samples: { t: number; backlog: number; ingest: number; flushMs: number | null }[],
): HistoryView {
  return {
    mode,
    interval_ms: 10_000,
    window_ms: 3_600_000,
    t: samples.map((s) => s.t),
    backlog: samples.map((s) => s.backlog),
    ingest_per_s: samples.map((s) => s.ingest),
    flushed_per_s: samples.map(() => 0),
    flush_ms_avg: samples.map((s) => s.flushMs),
    flush_ms_max: samples.map((s) => s.flushMs),
    flush_failures: samples.map(() => 0),
    oldest_unflushed_s: samples.map(() => 0),
  };
}

function render(state: HistoryState, mode: Mode = "paper") {
  act(() => root.render(createElement(HistoryPanel, { state, mode })));
}
const q = (sel: string) => host.querySelector(sel);
const text = (sel: string) => q(sel)?.textContent ?? null;
const CHARTS = ["backlog", "latency", "ingest"];

describe("HistoryPanel", () => {
  test("says 'no data yet' in every chart before the first sample, with no line", () => {
    render({ status: "ok", views: { paper: view("paper", []), live: view("live", []) } });
    for (const c of CHARTS) {
      expect(text(`[data-testid=chart-${c}-message]`)).toBe("no data yet");
      expect(host.querySelectorAll(`[data-testid=chart-${c}] [data-series]`)).toHaveLength(0);
    }
  });

  test("says 'no data yet' for latency alone while nothing was sent, and draws the other two", () => {
    render({
      status: "ok",
      views: {
        paper: view("paper", [{ t: 1000, backlog: 3, ingest: 0.3, flushMs: null }]),
        live: view("live", [{ t: 1000, backlog: 0, ingest: 0, flushMs: null }]),
      },
    });
    expect(text("[data-testid=chart-latency-message]")).toBe("no data yet");
    expect(text("[data-testid=chart-backlog-now]")).toBe("paper 3 · live 0 events");
    expect(text("[data-testid=chart-ingest-now]")).toBe("stored 0.3 · flushed 0 events/s");
  });

  test("labels the axes with the unit, round values and sample times, and shows the page's mode", () => {
    const samples = [0, 1, 2].map((i) => ({
      t: 1_700_000_000_000 + i * 10_000,
      backlog: i * 40,
      ingest: i,
      flushMs: 12.5 + i,
    }));
    render({ status: "ok", views: { paper: view("paper", samples), live: view("live", samples) } }, "live");
    expect(text("[data-testid=chart-latency] figcaption")).toContain("Flush latency (live)");
    expect(text("[data-testid=chart-latency] figcaption")).toContain("(ms)");
    const yLabels = [...host.querySelectorAll("[data-testid=chart-backlog] g.tick text")].map((t) => t.textContent);
    expect(yLabels).toEqual(["0", "50", "100"]);
    expect(host.querySelectorAll("[data-testid=chart-backlog] svg > text.tick")).toHaveLength(3);
    expect(text("[data-testid=chart-latency-now]")).toBe("mean 14.5 · max 14.5 ms");
    expect(q("[data-testid=history]")!.getAttribute("data-live-t")).toBe(String(samples[2]!.t));
  });

  test("keeps the same number of nodes when newer samples replace older ones", () => {
    const at = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ t: i * 1000, backlog: i % 7, ingest: i % 3, flushMs: i % 2 ? 5 : null }));
    render({ status: "ok", views: { paper: view("paper", at(10)), live: view("live", at(10)) } });
    const before = host.querySelectorAll("*").length;
    render({ status: "ok", views: { paper: view("paper", at(300)), live: view("live", at(300)) } });
    expect(host.querySelectorAll("*").length).toBe(before);
  });

  test("holds no line and says why when the local service is unreachable, not yet found, loading, or refusing", () => {
    for (const [state, message] of [
      [{ status: "unreachable" }, "the local service is unreachable: its history is not available"],
      [{ status: "connecting" }, "connecting to the local service…"],
      [{ status: "loading" }, "loading…"],
      [
        { status: "error", error: "GET /local/history answered 401" },
        "history not available: GET /local/history answered 401",
      ],
    ] as [HistoryState, string][]) {
      render(state);
      expect(q("[data-testid=history]")!.getAttribute("data-state")).toBe(state.status);
      for (const c of CHARTS) {
        expect(text(`[data-testid=chart-${c}-message]`)).toBe(message);
        expect(host.querySelectorAll(`[data-testid=chart-${c}] [data-series]`)).toHaveLength(0);
        expect(text(`[data-testid=chart-${c}-now]`)).toBe("");
      }
    }
  });
});
