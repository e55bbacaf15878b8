// The image service's tunables (each documented where defined) and the types of its components,
// options and answers.
import type { PrivateKey } from '@libp2p/interface';
import type { ServiceLogger, ServiceNode } from '../../membership/index.js';
import type { KvStore } from '../../storage/index.js';
import type { Manifest } from '../../storage/images/index.js';
import type { PlacementMember } from '../placement.js';
import type { PullOptions } from './puller.js';

/** Time between manifest anti-entropy rounds (ms). */
export const IMAGE_SYNC_INTERVAL_MS = 10_000;
/** Rounds started by members coming up (joins, restarts) are at least this far apart (ms). */
export const IMAGE_UP_SYNC_GAP_MS = 1_000;
/** A pulling agent announces its progress this often (ms); a holder every IMAGE_HOLDER_ANNOUNCE_MS. */
export const IMAGE_PROGRESS_INTERVAL_MS = 1_000;
export const IMAGE_HOLDER_ANNOUNCE_MS = 30_000;
/**
 * Providers found in the DHT for an image are used this long before it is asked again (ms). A
 * puller asks when it knows no holder in its own site.
 */
export const PROVIDER_LOOKUP_CACHE_MS = 10_000;
/**
 * A pull that failed on this agent's own store (a full disk, a store made read-only) is not
 * started again for this long, doubled after each such failure up to PULL_LOCAL_BACKOFF_MAX_MS
 * (ms). Other failures (sources gone) are retried after 2 s.
 */
export const PULL_LOCAL_BACKOFF_MS = 5_000;
export const PULL_LOCAL_BACKOFF_MAX_MS = 60_000;
/**
 * A pull starts only when the device holding the data directory has the bytes it still needs plus
 * this much free (bytes), so that a pull does not fill the disk that KV writes and registrations
 * need too; otherwise it is paused as if the disk were full.
 */
export const PULL_FREE_SPACE_RESERVE_BYTES = 64 * 2 ** 20;

/**
 * Manifest fetches (anti-entropy rounds, announced versions) stop for this long after storing one
 * failed for want of space, doubling after each such failure up to MANIFEST_LOCAL_BACKOFF_MAX_MS
 * (ms): until then every round fetched the same manifests again (a manifest holds ~2 KiB per MiB
 * of image).
 */
export const MANIFEST_LOCAL_BACKOFF_MS = 10_000;
export const MANIFEST_LOCAL_BACKOFF_MAX_MS = 120_000;

/**
 * A chunk store that turned read-only after a failed commit is closed and opened again this long
 * after (ms), doubling after each reopen that fails, up to CHUNK_STORE_REOPEN_MAX_MS. Opening
 * re-checks the index against the packs, as after a crash.
 */
export const CHUNK_STORE_REOPEN_MS = 2_000;
export const CHUNK_STORE_REOPEN_MAX_MS = 60_000;

/** Time between garbage collections of unreferenced chunks (ms). */
export const IMAGE_GC_INTERVAL_MS = 10 * 60_000;
/** New chunks are told to connected pullers in batches this often (ms). */
export const HAVE_BATCH_MS = 20;
/** Failed chunk reads while serving (EIO, say) are logged at most once per this long (ms). */
export const READ_FAILURE_LOG_MS = 60_000;

export interface ImageMembership {
  readonly selfId: string;
  readonly selfSite: string;
  members(): Array<PlacementMember & { name: string }>;
  site(id: string): string | undefined;
  state(id: string): string | undefined;
  rtt(id: string): number | undefined;
  randomPeer(opts?: { otherSite?: boolean }): string | undefined;
  addEventListener(type: 'change', l: (e: Event) => void): void;
  removeEventListener(type: 'change', l: (e: Event) => void): void;
}

export interface ImageComponents {
  node: ServiceNode;
  privateKey: PrivateKey;
  /** Namespace of the agent's store for manifests. */
  store: KvStore;
  /** Directory for chunk files. */
  chunkDir: string;
  membership: ImageMembership;
  logger: ServiceLogger;
  metrics?: {
    bytes(direction: 'in' | 'out', scope: 'site' | 'wan', n: number): void;
    images(counts: Record<LocalState, number>): void;
    dropped(reason: string): void;
    badChunk(): void;
  };
}

export interface ImageOptions {
  keepVersions?: number;
  /** Upload cap for serving chunks, bytes/s (0 = none). */
  uploadRate?: number;
  /** Cap on chunk bytes sent to other sites, bytes/s (0 = none). */
  wanRate?: number;
  /** Largest image accepted by push (bytes). */
  maxImageBytes?: number;
  pull?: Partial<PullOptions>;
  syncIntervalMs?: number;
}

export type LocalState = 'complete' | 'pulling' | 'not_placed';

export interface ImageSummary {
  name: string;
  tag: string;
  version: number;
  digest: string;
  size: number;
  chunks: number;
  creator: string;
  createdAt: number;
  placement: Manifest['placement'];
  /** What this agent holds of it. */
  local: LocalStatus;
}

export interface LocalStatus {
  state: LocalState;
  bytes: number;
  /**
   * Set while this agent's pull of the image is paused after it failed on this agent's own store
   * (a full disk): why, and in how long it is tried again (ms).
   */
  paused?: { reason: string; retryInMs: number };
  /** Chunks held here (readable and served to peers). */
  chunks: number;
  /** Of those, chunks that survive a crash (a pull stores chunks and flushes them every 500 ms). */
  durableChunks: number;
}
