// The package's main entry (`@zoe-local/react`): the React hook and everything
// of the framework-free core, so a React dashboard imports from one place.
export * from "./core.ts";
export { type LocalLive, type UseLocalLiveOptions, useLocalLive } from "./use-local-live.ts";
