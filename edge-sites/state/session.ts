// One anti-entropy session of the replicated state over a libp2p stream, both directions at once:
//   each side sends its summary (one frame), then streams changesSince(the peer's summary) as
//   change batches and closes its writing side; each side reads the peer's summary first and then
//   applies the peer's batches in order. Only the differences travel.
import {
  decodeBatch,
  decodeSummary,
  encodeBatch,
  encodeSummary,
  SyncReceiver,
  type StateStore,
  type VersionVector,
} from '../../storage/state/index.js';
import type { FramedStream } from '../../membership/index.js';

export interface SessionResult {
  bytesIn: number;
  bytesOut: number;
  recordsIn: number;
  recordsOut: number;
  /** The peer's summary, for tombstone collection. */
  peerSummary?: VersionVector;
  applied: number;
}

export interface SessionHooks {
  /** Called with the changes of each applied batch (for watches). */
  onApplied?(res: Awaited<ReturnType<SyncReceiver['receive']>>): void;
  /** Called for every frame sent or received, as it goes (so a session that fails counts too). */
  onBytes?(direction: 'in' | 'out', n: number): void;
}

export async function runSession(
  store: StateStore,
  fs: FramedStream,
  signal: AbortSignal,
  hooks: SessionHooks = {},
): Promise<SessionResult> {
  const counted = (direction: 'in' | 'out', n: number) => {
    if (direction === 'in') result.bytesIn += n;
    else result.bytesOut += n;
    hooks.onBytes?.(direction, n);
  };
  const result: SessionResult = {
    bytesIn: 0,
    bytesOut: 0,
    recordsIn: 0,
    recordsOut: 0,
    applied: 0,
  };
  let gotSummary!: (v: VersionVector) => void;
  let failSummary!: (e: unknown) => void;
  const peerSummary = new Promise<VersionVector>((res, rej) => {
    gotSummary = res;
    failSummary = rej;
  });
  // send() may have failed before it awaits the summary: the rejection is reported by receive()
  peerSummary.catch(() => undefined);
  // the summary and the batches are computed against the store as it is at the start of the session
  const mine = encodeSummary(store.summary());

  const send = async () => {
    await fs.write(mine, signal);
    counted('out', mine.length);
    const theirs = await peerSummary;
    for await (const batch of store.changesSince(theirs, { signal })) {
      const bytes = encodeBatch(batch);
      await fs.write(bytes, signal);
      counted('out', bytes.length);
      result.recordsOut += batch.records.length;
    }
    await fs.closeWrite(signal);
  };

  const receive = async () => {
    const first = await fs.read(signal);
    if (!first) {
      const err = new Error('the peer closed the session before sending its summary');
      failSummary(err);
      throw err;
    }
    counted('in', first.length);
    let theirs: VersionVector;
    try {
      theirs = decodeSummary(first);
    } catch (err) {
      failSummary(err);
      throw err;
    }
    result.peerSummary = theirs;
    gotSummary(theirs);
    // versions of our own origin the peer claims beyond our last version: our next writes skip them
    await store.noteClaims(theirs);
    const receiver = new SyncReceiver(store);
    for (;;) {
      const frame = await fs.read(signal);
      if (!frame) break;
      counted('in', frame.length);
      const batch = decodeBatch(frame);
      result.recordsIn += batch.records.length;
      const res = await receiver.receive(batch);
      result.applied += res.applied;
      hooks.onApplied?.(res);
    }
  };

  await Promise.all([send(), receive()]);
  return result;
}
