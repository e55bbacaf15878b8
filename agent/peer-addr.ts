// Peer-to-peer addresses as operators give them (config `listen` and `join`, `--join`, POST
// /v1/join): a multiaddr /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT[/p2p/PEER] or HOST:PORT. Checked
// in full where they come in, so a bad one is refused naming its key instead of failing later
// (at listen time with libp2p's multi-line text, or as a join retried forever).
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { z } from 'zod';

const MULTIADDR_RE = /^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/(\d+)(?:\/p2p\/(\w+))?$/;
const HOST_PORT_RE = /^([A-Za-z0-9.-]+):(\d+)$/;

/** "10.0.0.1:7946" → "/ip4/10.0.0.1/tcp/7946"; multiaddrs are returned unchanged. */
export function toMultiaddr(addr: string): Multiaddr {
  const m = HOST_PORT_RE.exec(addr);
  if (m) {
    const proto = /^[0-9.]+$/.test(m[1]) ? 'ip4' : 'dns4';
    return multiaddr(`/${proto}/${m[1]}/tcp/${m[2]}`);
  }
  return multiaddr(addr);
}

/**
 * What is wrong with `addr` as a peer address, or undefined when nothing is. Port 0 (any free
 * port) is allowed only where the address is listened on.
 */
export function peerAddrProblem(addr: string, use: 'listen' | 'dial'): string | undefined {
  const m = MULTIADDR_RE.exec(addr);
  const hp = m ? undefined : HOST_PORT_RE.exec(addr);
  if (!m && !hp) return 'expected a multiaddr like /ip4/10.0.0.1/tcp/7946 (or HOST:PORT)';
  const port = Number(m ? m[2] : hp![2]);
  if (port > 65535 || (port === 0 && use === 'dial'))
    return `port ${port} is not 1-65535${use === 'listen' ? ' (or 0 for any)' : ''}`;
  try {
    toMultiaddr(addr);
  } catch (err) {
    return (err as Error).message.split('\n')[0].slice(0, 120);
  }
  if (m?.[3] !== undefined) {
    try {
      peerIdFromString(m[3]);
    } catch {
      return `/p2p/${m[3].slice(0, 60)} is not a peer id`;
    }
  }
  return undefined;
}

/** A string that is a peer address (peerAddrProblem finds nothing wrong with it). */
export const peerAddrSchema = (use: 'listen' | 'dial') =>
  z.string().superRefine((s, ctx) => {
    const problem = peerAddrProblem(s, use);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
