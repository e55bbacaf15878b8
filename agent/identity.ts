// What an agent keeps in its data directory about itself: the peer identity (so a restarted agent
// has the same peer id), the cluster pre-shared key and the admin token for the HTTP API.
// Files are written to a temporary name, fsynced and renamed, so a crash never leaves half a key.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { ConfigError, fileErrorReason } from './errors.js';

/** Writes a file atomically (temp file, fsync, rename, fsync of the directory). */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  renameSync(tmp, path);
  fsyncDirQuietly(dirname(path));
}

/** fsync of a directory, so a rename or link in it is durable; where not allowed, nothing. */
function fsyncDirQuietly(dir: string): void {
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // some filesystems do not allow fsync on a directory; the rename or link is still atomic
  }
}

/** The file's bytes, or undefined if it does not exist; any other error is a ConfigError on `key`. */
function readIfExists(path: string, key: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new ConfigError(key, `cannot read ${path}: ${fileErrorReason(err)}`);
  }
}

/** Loads the agent's Ed25519 peer key from DATA/peer.key, creating it at first start. */
export async function loadOrCreatePeerKey(dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, 'peer.key');
  const existing = readIfExists(path, 'data');
  if (existing) {
    try {
      return privateKeyFromProtobuf(existing);
    } catch {
      throw new ConfigError(
        'data',
        `${path} is not a valid peer key; move it away to create a new identity`,
      );
    }
  }
  const key = await generateKeyPair('Ed25519');
  writeFileAtomic(path, privateKeyToProtobuf(key));
  return key;
}

const PSK_HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n';

/** A new cluster key in the libp2p private-network format (what `edgeswarm keygen` prints). */
export function generateClusterKey(): string {
  return `${PSK_HEADER}${randomBytes(32).toString('hex')}\n`;
}

/** Validates the text of a cluster key file; returns its 32 key bytes. */
export function parseClusterKey(text: string, file: string): Uint8Array {
  const normalized = text.replace(/\r\n/g, '\n').trim();
  const m = /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n([0-9a-fA-F]{64})$/.exec(normalized);
  if (!m) {
    throw new ConfigError(
      'clusterKey',
      `${file} is not a cluster key (expected the format printed by 'edgeswarm keygen')`,
    );
  }
  return Buffer.from(m[1], 'hex');
}

/**
 * Loads the cluster key: from `file` when given, else DATA/cluster.key. A missing one is created
 * (mode 0600; an explicit file's directory must exist) and its path returned as `created`, so the
 * agent can say to copy it to the other agents: a new key joins no existing cluster.
 */
export function loadOrCreateClusterKey(
  dataDir: string,
  file?: string,
): { key: Uint8Array; created?: string } {
  const path = file ?? join(dataDir, 'cluster.key');
  const existing = readIfExists(path, 'clusterKey');
  if (existing) return { key: parseClusterKey(existing.toString('utf8'), path) };
  const text = generateClusterKey();
  if (file) {
    let problem: string | undefined;
    try {
      if (!statSync(dirname(file)).isDirectory()) problem = 'is not a directory';
    } catch (err) {
      problem =
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? 'does not exist'
          : `cannot be read: ${fileErrorReason(err)}`;
    }
    if (problem)
      throw new ConfigError(
        'clusterKey',
        `cannot create ${file}: ${dirname(file)} ${problem} (create it, or the key with 'edgeswarm keygen > ${file}')`,
      );
  }
  try {
    // agents started together on one key file (the tour's three) must not each make their own:
    // the first to link its key in place wins, and the others read it
    if (!writeFileExclusive(path, text)) {
      const theirs = readIfExists(path, 'clusterKey');
      if (theirs) return { key: parseClusterKey(theirs.toString('utf8'), path) };
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError('clusterKey', `cannot create ${path}: ${code ?? (err as Error).message}`);
  }
  return { key: parseClusterKey(text, path), created: path };
}

/**
 * Writes a new file whole (temporary file, fsync, hard link into place), unless `path` exists:
 * false then, and the existing file is left as it is. Where hard links are not supported, the
 * file is created in place, exclusively.
 */
export function writeFileExclusive(path: string, data: string, mode = 0o600): boolean {
  const write = (file: string) => {
    const fd = openSync(file, 'wx', mode);
    try {
      writeSync(fd, Buffer.from(data));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  };
  const exists = (err: unknown) => (err as NodeJS.ErrnoException).code === 'EEXIST';
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  write(tmp);
  try {
    linkSync(tmp, path);
  } catch (err) {
    if (exists(err)) return false;
    try {
      write(path);
    } catch (err2) {
      if (exists(err2)) return false;
      throw err2;
    }
  } finally {
    unlinkSync(tmp);
  }
  fsyncDirQuietly(dirname(path));
  return true;
}

/** Loads DATA/admin.token (mode 0600), creating it at first start. */
export function loadOrCreateAdminToken(dataDir: string): string {
  const path = join(dataDir, 'admin.token');
  const existing = readIfExists(path, 'data');
  if (existing) {
    const token = existing.toString('utf8').trim();
    if (token.length >= 16) return token;
  }
  const token = randomBytes(32).toString('hex');
  writeFileAtomic(path, `${token}\n`, 0o600);
  return token;
}
