// The load score (agent/load.ts): the /proc parsers on fixed text, the score formula, and the
// monitor's refresh of the client count (re-read when the ports change or the count is old, not
// at every sample: a read of /proc/net/tcp costs milliseconds of kernel time whatever it holds).
import { describe, expect, it } from 'vitest';
import {
  LOAD_CLIENTS_REFRESH_MS,
  LOAD_REFRESH_MS,
  LoadMonitor,
  computeScore,
  diskBytes,
  establishedOnPorts,
  netBytes,
} from '../../../agent/load.js';

const TCP = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  // listening on 8080 (0A), then two established (01) clients of 8080 and one of 9090
  '   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
  '   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1',
  '   2: 0100007F:1F90 0100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 3 1',
  '   3: 0100007F:2382 0100007F:C352 01 00000000:00000000 00:00000000 00000000     0        0 4 1',
  // a connection we made from port 8080's neighbour to someone else's 8080 does not count
  '   4: 0100007F:C353 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 5 1',
].join('\n');
const TCP6 = [
  '  sl  local_address                         remote_address                        st',
  '   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C354 01 0',
].join('\n');

describe('load score inputs', () => {
  it('counts established connections to the given local ports only', () => {
    expect(establishedOnPorts(new Set([8080]), [TCP, TCP6])).toBe(3);
    expect(establishedOnPorts(new Set([9090]), [TCP, TCP6])).toBe(1);
    expect(establishedOnPorts(new Set([8080, 9090]), [TCP, undefined])).toBe(3);
    expect(establishedOnPorts(new Set(), [TCP, TCP6])).toBe(0);
  });

  it('sums non-loopback interface bytes and whole-disk sectors', () => {
    const dev = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets',
      '    lo: 1000 1 0 0 0 0 0 0 1000 1 0 0 0 0 0 0',
      '  eth0: 300 3 0 0 0 0 0 0 200 2 0 0 0 0 0 0',
    ].join('\n');
    expect(netBytes(dev)).toBe(500);
    const disk = [
      '   8       0 sda 1 0 10 0 1 0 6 0 0 0 0',
      '   8       1 sda1 1 0 99 0 1 0 99 0 0 0 0',
      '   7       0 loop0 1 0 99 0 1 0 99 0 0 0 0',
    ].join('\n');
    expect(diskBytes(disk)).toBe(16 * 512);
    expect(netBytes('')).toBeUndefined();
  });

  it('weighs cpu, net, disk and clients and caps each', () => {
    expect(computeScore({ cpu: 0.5, net: 0.5, disk: 0, clients: 0 })).toBe(0.3);
    expect(computeScore({ cpu: 10, net: 5, disk: 5, clients: 5 })).toBe(2.2);
    expect(computeScore({ cpu: -1, net: -1, disk: -1, clients: -1 })).toBe(0);
  });
});

describe('LoadMonitor', () => {
  function monitor(ports: number[]) {
    const reads: number[][] = [];
    const published: number[] = [];
    const m = new LoadMonitor({
      servicePorts: () => ports,
      publish: (s) => published.push(s),
      sources: {
        cpu: () => 0,
        net: () => 0,
        disk: () => 0,
        clients: (p) => {
          reads.push([...p]);
          return 500;
        },
      },
    });
    return { m, reads, published };
  }

  it('reads the client count once per refresh interval, and at once when the ports change', () => {
    const ports = [8080];
    const { m, reads } = monitor(ports);
    const t0 = 1_000_000;
    expect(m.sample(t0)).toBe(0.1); // 0.2 x 500/1000
    for (let t = t0 + LOAD_REFRESH_MS; t < t0 + LOAD_CLIENTS_REFRESH_MS; t += LOAD_REFRESH_MS)
      expect(m.sample(t)).toBe(0.1);
    expect(reads).toEqual([[8080]]);
    m.sample(t0 + LOAD_CLIENTS_REFRESH_MS);
    expect(reads).toHaveLength(2);
    // a new service: its clients count from the next sample, not a minute later
    ports.push(9090);
    m.sample(t0 + LOAD_CLIENTS_REFRESH_MS + 1);
    expect(reads.at(-1)).toEqual([8080, 9090]);
    // the same ports in another order are the same ports
    ports.reverse();
    m.sample(t0 + LOAD_CLIENTS_REFRESH_MS + 2);
    expect(reads).toHaveLength(3);
  });
});
