// File I/O of packs: the writer of a pack being filled, and a cache of read descriptors.
//
// Everything goes through numeric fds and the callback API of node:fs (one libuv request per
// call, no FileHandle objects): a put is one writev() at a reserved offset, a get one readv().
import * as fs from 'node:fs';
import { join } from 'node:path';
import { PACK_HEADER_BYTES, PACK_MAGIC, packName } from './pack-format.js';

function openFd(path: string, flags: string, mode?: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())),
  );
}

/** Writes every byte of `bufs` at `position` (retrying short writes). */
async function writevAll(fd: number, bufs: Uint8Array[], position: number): Promise<void> {
  let rest = bufs.filter((b) => b.length > 0);
  let pos = position;
  while (rest.length > 0) {
    const n = await new Promise<number>((resolve, reject) =>
      fs.writev(fd, rest, pos, (err, written) => (err ? reject(err) : resolve(written))),
    );
    if (n <= 0) throw new Error(`writev wrote ${n} bytes`);
    pos += n;
    let skip = n;
    const next: Uint8Array[] = [];
    for (const b of rest) {
      if (skip >= b.length) skip -= b.length;
      else {
        next.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    rest = next;
  }
}

/** Reads into `bufs` from `position`; returns the bytes read (fewer only at the end of the file). */
async function readvFull(fd: number, bufs: Uint8Array[], position: number): Promise<number> {
  const want = bufs.reduce((s, b) => s + b.length, 0);
  let total = 0;
  while (total < want) {
    let skip = total;
    const rest: Uint8Array[] = [];
    for (const b of bufs) {
      if (skip >= b.length) skip -= b.length;
      else {
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    const n = await new Promise<number>((resolve, reject) =>
      fs.readv(fd, rest, position + total, (err, got) => (err ? reject(err) : resolve(got))),
    );
    if (n === 0) break;
    total += n;
  }
  return total;
}

/** Buffers (two per record) in one writev at most: IOV_MAX is 1024 on Linux. */
const GROUP_MAX_BUFS = 1024;
/** Bytes in one writev at most (a group this big goes at once). */
const GROUP_MAX_BYTES = 4 << 20;

interface WriteGroup {
  start: number;
  end: number;
  bufs: Uint8Array[];
  sent: boolean;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A pack being filled: records go at offsets reserved in order, written in groups. */
export class PackWriter {
  readonly seq: number;
  readonly path: string;
  readonly #fd: number;
  /** End of the reserved space: where the next record goes. */
  end = PACK_HEADER_BYTES;
  /** Writes started and not finished. */
  inflight = 0;
  /** A write finished since the last sync() started. */
  dirty = true;
  /** No more records go here (rolled over, or a write or sync failed). */
  retired = false;
  /** A sync failed: what was written here may be lost, so none of it may be acknowledged. */
  poisoned = false;
  /** An fdatasync is running: the fd must stay open. */
  syncing = false;
  #group: WriteGroup | undefined;
  #closed = false;

  private constructor(seq: number, path: string, fd: number) {
    this.seq = seq;
    this.path = path;
    this.#fd = fd;
  }

  /** Creates pack `seq` in `dir` (it must not exist) and writes its file header. */
  static async create(dir: string, seq: number): Promise<PackWriter> {
    const path = join(dir, packName(seq));
    const fd = await openFd(path, 'wx', 0o600);
    try {
      await writevAll(fd, [PACK_MAGIC], 0);
    } catch (err) {
      await closeFd(fd);
      throw err;
    }
    return new PackWriter(seq, path, fd);
  }

  /** True if a record of `bytes` fits under `limit` (an empty pack takes any record). */
  fits(bytes: number, limit: number): boolean {
    return this.end === PACK_HEADER_BYTES || this.end + bytes <= limit;
  }

  /** Reserves `bytes` at the end; returns their offset. */
  reserve(bytes: number): number {
    const at = this.end;
    this.end += bytes;
    return at;
  }

  /**
   * Writes a record at a reserved offset. Records reserved one after another in the same turn of
   * the event loop go out in one writev (a write group), which costs the thread pool round trip
   * once instead of once per record. On failure the pack is retired.
   */
  async write(offset: number, parts: Uint8Array[]): Promise<void> {
    this.inflight++;
    try {
      let g = this.#group;
      if (g === undefined || g.end !== offset || g.bufs.length + parts.length > GROUP_MAX_BUFS) {
        g = this.#openGroup(offset);
      }
      for (const p of parts) {
        g.bufs.push(p);
        g.end += p.length;
      }
      if (g.end - g.start >= GROUP_MAX_BYTES) this.#dispatch(g);
      await g.done;
      this.dirty = true;
    } catch (err) {
      this.retired = true;
      throw err;
    } finally {
      this.inflight--;
    }
  }

  #openGroup(offset: number): WriteGroup {
    if (this.#group !== undefined) this.#dispatch(this.#group);
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const g: WriteGroup = {
      start: offset,
      end: offset,
      bufs: [],
      sent: false,
      done,
      resolve,
      reject,
    };
    this.#group = g;
    setImmediate(() => this.#dispatch(g));
    return g;
  }

  /** Sends the group's writev (once); records can no longer join it. */
  #dispatch(g: WriteGroup): void {
    if (g.sent) return;
    g.sent = true;
    if (this.#group === g) this.#group = undefined;
    writevAll(this.#fd, g.bufs, g.start).then(g.resolve, g.reject);
  }

  /**
   * fdatasync() if a write finished since the last sync: every write finished before the call is
   * then on disk. A failure poisons the pack (see `poisoned`).
   */
  async sync(): Promise<void> {
    if (!this.dirty || this.#closed) return;
    this.dirty = false;
    this.syncing = true;
    try {
      await fdatasync(this.#fd);
    } catch (err) {
      this.poisoned = true;
      this.retired = true;
      throw err;
    } finally {
      this.syncing = false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeFd(this.#fd);
  }
}

interface ReadFd {
  fd: Promise<number>;
  users: number;
  lastUse: number;
  /** Close as soon as unused (the pack was deleted, or the cache is over its size). */
  doomed: boolean;
}

/** Read-only fds of packs, opened on demand, at most `max` kept open while unused. */
export class PackReaders {
  readonly #dir: string;
  readonly #max: number;
  readonly #fds = new Map<number, ReadFd>();
  #tick = 0;

  constructor(dir: string, max: number) {
    this.#dir = dir;
    this.#max = Math.max(1, max);
  }

  /** Reads into `bufs` from `offset` of pack `seq`; returns the bytes read. ENOENT if no pack. */
  async read(seq: number, offset: number, bufs: Uint8Array[]): Promise<number> {
    let e = this.#fds.get(seq);
    if (e === undefined) {
      const fresh: ReadFd = {
        fd: openFd(join(this.#dir, packName(seq)), 'r'),
        users: 0,
        lastUse: 0,
        doomed: false,
      };
      e = fresh;
      this.#fds.set(seq, e);
      e.fd.catch(() => {
        if (this.#fds.get(seq) === fresh) this.#fds.delete(seq);
      });
    }
    e.users++;
    e.lastUse = ++this.#tick;
    this.#evict();
    try {
      return await readvFull(await e.fd, bufs, offset);
    } finally {
      e.users--;
      if (e.doomed && e.users === 0) void this.#close(e);
    }
  }

  /** Closes the fd of pack `seq` once no read uses it (call when the pack is deleted). */
  forget(seq: number): void {
    const e = this.#fds.get(seq);
    if (e === undefined) return;
    this.#fds.delete(seq);
    e.doomed = true;
    if (e.users === 0) void this.#close(e);
  }

  async closeAll(): Promise<void> {
    const all = [...this.#fds.values()];
    this.#fds.clear();
    for (const e of all) e.doomed = true;
    await Promise.all(all.filter((e) => e.users === 0).map((e) => this.#close(e)));
  }

  #evict(): void {
    while (this.#fds.size > this.#max) {
      let victim: [number, ReadFd] | undefined;
      for (const entry of this.#fds)
        if (entry[1].users === 0 && (victim === undefined || entry[1].lastUse < victim[1].lastUse))
          victim = entry;
      if (victim === undefined) return; // all busy: over the limit until they finish
      this.forget(victim[0]);
    }
  }

  async #close(e: ReadFd): Promise<void> {
    const fd = await e.fd.catch(() => undefined);
    if (fd !== undefined) await closeFd(fd);
  }
}
