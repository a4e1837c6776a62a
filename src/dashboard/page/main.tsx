// Entry of the dashboard page: read the config (inline when the service
// serves the page, ./config.json for a static build), the API token from the
// page's own URL or session, then render.
import { createClient } from "@supabase/supabase-js";
import { createRoot } from "react-dom/client";
import { createSupabaseReader, type RemoteReader } from "../../client/remote.ts";
import type { Mode } from "../../client/types.ts";
import type { DashboardConfig } from "../config.ts";
import { App } from "./app.tsx";
import { readFilters, writeFilters } from "./filters.ts";
import "./dashboard.css";

const TOKEN_KEY = "zoe-dashboard-token";
const MODE_KEY = "zoe-dashboard-mode";

async function readConfig(): Promise<DashboardConfig> {
  const inline = document.getElementById("zoe-dashboard-config");
  if (inline?.textContent) return JSON.parse(inline.textContent) as DashboardConfig;
  const res = await fetch("config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`Cannot load config.json: HTTP ${res.status}`);
  return (await res.json()) as DashboardConfig;
}

/** `#token=…` or `?token=…` wins (and is moved out of the address bar), else this tab's session. */
function readToken(): string | null {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  const query = new URLSearchParams(location.search);
  const given = hash.get("token") ?? query.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    hash.delete("token");
    query.delete("token");
    const q = query.toString();
    const h = hash.toString();
    history.replaceState(null, "", `${location.pathname}${q ? `?${q}` : ""}${h ? `#${h}` : ""}`);
    return given;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function readMode(): Mode {
  const m = new URLSearchParams(location.search).get("mode") ?? localStorage.getItem(MODE_KEY);
  return m === "live" ? "live" : "paper";
}

async function start() {
  const root = createRoot(document.getElementById("root")!);
  let config: DashboardConfig;
  try {
    config = await readConfig();
  } catch (error) {
    root.render(<p className="fatal">{String(error)}</p>);
    return;
  }
  let remote: RemoteReader | null = null;
  if (config.supabaseUrl && config.supabaseAnonKey) {
    const client = createClient(config.supabaseUrl, config.supabaseAnonKey, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    });
    remote = createSupabaseReader(client);
  }
  root.render(
    <App
      config={config}
      remote={remote}
      initialMode={readMode()}
      initialToken={readToken()}
      initialFilters={readFilters(location.search)}
      onMode={(m) => {
        localStorage.setItem(MODE_KEY, m);
        const q = new URLSearchParams(location.search);
        q.set("mode", m);
        history.replaceState(null, "", `${location.pathname}?${q}${location.hash}`);
      }}
      onFilters={(f) =>
        history.replaceState(null, "", `${location.pathname}${writeFilters(location.search, f)}${location.hash}`)
      }
      onToken={(t) => (t ? sessionStorage.setItem(TOKEN_KEY, t) : sessionStorage.removeItem(TOKEN_KEY))}
    />,
  );
}

void start();
