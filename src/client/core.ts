// The package's framework-free entry (`@zoe-local/react/core`): the live feed,
// the Supabase reader for REMOTE mode, and the types they share.
export type { LiveFeed, LiveFeedOptions } from "./live-feed.ts";
export { createLiveFeed, DEFAULT_LOCAL_API_URL, type EventSourceLike, localHealth, localState } from "./live-feed.ts";
export { isImportant, mergeEvents, toEvent, unionBySeq } from "./merge.ts";
export {
  createSupabaseReader,
  type RemoteReader,
  RemoteReadError,
  type RemoteSubscription,
  remoteHealth,
  remoteState,
} from "./remote.ts";
export {
  type FeedSnapshot,
  type FeedState,
  type FeedStatus,
  type FlushHealth,
  IMPORTANT_SUBTYPES,
  type Mode,
  type RemoteStatus,
  SEVERITIES,
  type Severity,
  type Timers,
  type StoredEvent,
} from "./types.ts";
