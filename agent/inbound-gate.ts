// Inbound connections still in their handshake, counted per remote host. libp2p bounds them only
// in all (maxIncomingPendingConnections): one host that opened that many TCP connections and sent
// nothing held every slot, and members' dials were refused, without the cluster key. The gate
// refuses a host's connection while it already has MAX_PENDING_PER_HOST of them in their
// handshake; one stops counting once it is encrypted (its peer had the key) or closed.
import type { ConnectionGater, MultiaddrConnection } from '@libp2p/interface';

/**
 * Inbound connections from one IP address that may be in their handshake at once (default 64).
 * The largest cluster on one host we run is 50 agents (benchmarks on loopback), and a site behind
 * one NAT address dials through one address too; a refused dial is retried. With libp2p's
 * pending limit of 1000 (node.ts), filling it takes 16 hosts instead of one.
 */
export const MAX_PENDING_PER_HOST = 64;

function hostOf(maConn: MultiaddrConnection): string | undefined {
  return maConn.remoteAddr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value;
}

export interface PendingGate extends ConnectionGater {
  /** Connections of `host` in their handshake now (for tests). */
  pending(host: string): number;
}

export function pendingPerHostGate(max = MAX_PENDING_PER_HOST): PendingGate {
  const pending = new Map<string, number>();
  const counted = new WeakMap<MultiaddrConnection, string>();
  const done = (maConn: MultiaddrConnection): void => {
    const host = counted.get(maConn);
    if (host === undefined) return;
    counted.delete(maConn);
    const n = (pending.get(host) ?? 1) - 1;
    if (n > 0) pending.set(host, n);
    else pending.delete(host);
  };
  return {
    pending: (host) => pending.get(host) ?? 0,
    denyInboundConnection: (maConn) => {
      const host = hostOf(maConn);
      if (host === undefined) return false;
      const n = pending.get(host) ?? 0;
      if (n >= max) return true;
      pending.set(host, n + 1);
      counted.set(maConn, host);
      maConn.addEventListener('close', () => done(maConn), { once: true });
      return false;
    },
    denyInboundEncryptedConnection: (_peer, maConn) => {
      done(maConn);
      return false;
    },
  };
}
