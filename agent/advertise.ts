// The address this agent publishes for services registered without one.
import { networkInterfaces } from 'node:os';

/** The IP of the first listen address, else the first non-internal IPv4 interface, else 127.0.0.1. */
export function advertiseAddress(listen: string[], configured?: string): string {
  if (configured) return configured;
  for (const a of listen) {
    const m = /^\/ip[46]\/([^/]+)\//.exec(a) ?? /^([0-9.]+):\d+$/.exec(a);
    if (m && m[1] !== '0.0.0.0' && m[1] !== '::') return m[1];
  }
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
