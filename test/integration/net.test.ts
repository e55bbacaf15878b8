// The network layer over real libp2p nodes: datagram channel and frames.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TCP_BACKLOG, type EdgeNode } from '../../agent/node.js';
import { Broadcast, type BroadcastMessage } from '../../membership/net/broadcast.js';
import { DatagramChannel } from '../../membership/net/datagram.js';
import { DigestExchange } from '../../membership/net/digest.js';
import { startNodes, stopNodes } from '../helpers/nodes.js';
import { waitFor } from '../helpers/wait.js';

let nodes: EdgeNode[] = [];
afterEach(async () => {
  await stopNodes(nodes);
  nodes = [];
});

describe('DatagramChannel', () => {
  it('delivers messages in both directions, opening streams on demand', async () => {
    nodes = await startNodes(2);
    const got: Array<[number, string, string]> = [];
    const chans = nodes.map(
      (n, i) =>
        new DatagramChannel(n, {
          protocol: '/edgeswarm/test-dgram/1.0.0',
          maxMessageBytes: 1024,
          openTimeoutMs: 2000,
          onMessage: (from, bytes) => got.push([i, from, new TextDecoder().decode(bytes)]),
        }),
    );
    for (const c of chans) await c.start();
    const [a, b] = nodes.map((n) => n.peerId.toString());
    // 20 wait in the queue while the stream opens; the next 30 go straight onto the open stream
    for (let i = 0; i < 20; i++) chans[0].send(b, new TextEncoder().encode(`m${i}`));
    await waitFor(() => got.length === 20);
    for (let i = 20; i < 50; i++) chans[0].send(b, new TextEncoder().encode(`m${i}`));
    chans[1].send(a, new TextEncoder().encode('back'));
    await waitFor(() => got.length === 51, { timeout: 5000, message: 'all messages' });
    expect(got.filter(([i]) => i === 1).map(([, , m]) => m)).toEqual(
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    );
    expect(got.find(([i]) => i === 0)).toEqual([0, b, 'back']);
    for (const c of chans) await c.stop();
  });

  it('drops oversized messages and a peer sending an oversized frame is cut off and reported', async () => {
    nodes = await startNodes(2);
    const bad: string[] = [];
    const drops: string[] = [];
    const got: string[] = [];
    const recv = new DatagramChannel(nodes[1], {
      protocol: '/edgeswarm/test-dgram/1.0.0',
      maxMessageBytes: 100,
      openTimeoutMs: 2000,
      onMessage: (_f, m) => got.push(new TextDecoder().decode(m)),
      onBadInput: (from, reason) => bad.push(`${from}:${reason}`),
    });
    const send = new DatagramChannel(nodes[0], {
      protocol: '/edgeswarm/test-dgram/1.0.0',
      maxMessageBytes: 1000,
      openTimeoutMs: 2000,
      onMessage: () => {},
      onDrop: (reason) => drops.push(reason),
    });
    await recv.start();
    await send.start();
    const b = nodes[1].peerId.toString();
    expect(send.send(b, new Uint8Array(2000))).toBe(false);
    expect(drops).toEqual(['too_large']);
    send.send(b, new TextEncoder().encode('ok'));
    await waitFor(() => got.length === 1);
    send.send(b, new Uint8Array(500));
    await waitFor(() => bad.length === 1, { message: 'the oversized frame to be reported' });
    expect(bad[0]).toBe(`${nodes[0].peerId.toString()}:frame_too_large`);
    // the sender reopens a stream and carries on
    await waitFor(
      () => {
        send.send(b, new TextEncoder().encode('again'));
        return got.includes('again');
      },
      { timeout: 5000, interval: 100 },
    );
    await send.stop();
    await recv.stop();
  });
});

describe('DigestExchange', () => {
  const protocol = '/edgeswarm/test-digest/1.0.0';

  it('tells the receiver whether the digests match; garbage is reported; a peer without the protocol is unsent', async () => {
    nodes = await startNodes(3);
    const [a, b, c] = nodes.map((n) => n.peerId.toString());
    const events: string[] = [];
    let bDigest = Uint8Array.of(1, 2, 3);
    const ex = nodes.slice(0, 2).map(
      (n, i) =>
        new DigestExchange(n, {
          protocol,
          digest: () => (i === 0 ? Uint8Array.of(1, 2, 3) : bDigest),
          onSame: (peer) => events.push(`${i} same ${peer}`),
          onDiffer: (peer) => events.push(`${i} differ ${peer}`),
          onUnsent: (peer) => events.push(`${i} unsent ${peer}`),
          onBadInput: (peer, reason) => events.push(`${i} bad ${peer} ${reason}`),
        }),
    );
    for (const e of ex) await e.start();
    ex[0].offer(b);
    await waitFor(() => events.length === 1);
    expect(events).toEqual([`1 same ${a}`]);
    bDigest = Uint8Array.of(1, 2, 4);
    ex[0].offer(b);
    await waitFor(() => events.length === 2);
    expect(events[1]).toBe(`1 differ ${a}`);
    // c runs no DigestExchange: the caller hears that the digest did not go out
    ex[0].offer(c);
    await waitFor(() => events.length === 3, { message: 'the offer to c reported unsent' });
    expect(events[2]).toBe(`0 unsent ${c}`);
    // a frame that is not a digest message (wrong version byte) is reported, and b carries on
    const raw = new DatagramChannel(nodes[2], {
      protocol,
      maxMessageBytes: 100,
      openTimeoutMs: 2000,
      onMessage: () => {},
    });
    await raw.start();
    raw.send(b, Uint8Array.of(9, 1, 2, 3));
    await waitFor(() => events.length === 4);
    expect(events[3]).toBe(`1 bad ${c} bad_digest`);
    ex[0].offer(b);
    await waitFor(() => events.length === 5);
    expect(events[4]).toBe(`1 differ ${a}`);
    await raw.stop();
    for (const e of ex) await e.stop();
  });
});

describe('libp2p connection (patches/libp2p+3.3.11.patch)', () => {
  it("records a stream's protocol in the peer store once per connection, not per stream", async () => {
    nodes = await startNodes(2);
    const protocol = '/edgeswarm/test-merge/1.0.0';
    await nodes[1].handle(protocol, (stream) => void stream.close());
    // count the merges that carry the protocol, on both sides
    const merges = [0, 0];
    nodes.forEach((n, i) => {
      const merge = n.peerStore.merge.bind(n.peerStore);
      n.peerStore.merge = (peer, data, opts) => {
        if (data.protocols?.includes(protocol)) merges[i]++;
        return merge(peer, data, opts);
      };
    });
    for (let i = 0; i < 5; i++) {
      const stream = await nodes[0].dialProtocol(nodes[1].peerId, protocol);
      await stream.close();
    }
    await waitFor(() => merges[1] > 0, { message: 'the served side to record the protocol' });
    expect(merges).toEqual([1, 1]);
    expect(nodes[0].getConnections(nodes[1].peerId)).toHaveLength(1);
    // the record is still there for whoever reads the peer store
    expect((await nodes[0].peerStore.get(nodes[1].peerId)).protocols).toContain(protocol);
  });
});

describe('gossipsub as agents configure it (agent/node.ts)', () => {
  it('delivers a message to every subscriber and sends no IHAVE gossip about it', async () => {
    nodes = await startNodes(9);
    const topic = 'edgeswarm/test-gossip/1';
    // count the IHAVEs each node queues for its peers (gossipsub's private pushGossip)
    let ihaves = 0;
    const got = nodes.map(() => 0);
    nodes.forEach((n, i) => {
      const ps = n.services.pubsub as unknown as { pushGossip(id: string, g: unknown): void };
      const push = ps.pushGossip.bind(ps);
      ps.pushGossip = (id, g) => {
        ihaves++;
        push(id, g);
      };
      n.services.pubsub.addEventListener('message', () => got[i]++);
      n.services.pubsub.subscribe(topic);
    });
    for (let i = 0; i < nodes.length; i++)
      for (let j = i + 1; j < nodes.length; j++) await nodes[i].dial(nodes[j].peerId);
    // 8 peers each, a mesh of 2-6: every node has peers outside its mesh to gossip to
    await waitFor(() => nodes.every((n) => n.services.pubsub.getSubscribers(topic).length === 8), {
      message: 'every node to see every other subscribed',
    });
    await new Promise((r) => setTimeout(r, 1500)); // a heartbeat builds the meshes
    await nodes[0].services.pubsub.publish(topic, new TextEncoder().encode('hello'));
    await waitFor(() => got.slice(1).every((c) => c === 1), { message: 'every node to get it' });
    // IHAVEs would go out at the next heartbeats (every second) while the message is in the window
    await new Promise((r) => setTimeout(r, 2500));
    expect(got).toEqual([0, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(ihaves).toBe(0);
  });
});

describe('Broadcast (membership/net/broadcast.ts)', () => {
  /** Counts the messages (not control) each node's gossipsub sends, through its sendRpc. */
  function countSends(ns: EdgeNode[]): { n: number } {
    const sent = { n: 0 };
    for (const n of ns) {
      const ps = n.services.pubsub as unknown as {
        sendRpc(id: string, rpc: { messages?: unknown[] }): boolean;
      };
      const send = ps.sendRpc.bind(ps);
      ps.sendRpc = (id, rpc) => {
        sent.n += rpc.messages?.length ?? 0;
        return send(id, rpc);
      };
    }
    return sent;
  }

  it('goes straight to every member with no forwarding when all are on the direct topic, through the mesh when one is not', async () => {
    nodes = await startNodes(9);
    const ids = nodes.map((n) => n.peerId.toString());
    const got: BroadcastMessage[][] = nodes.map(() => []);
    const channels = nodes.map(
      (n, i) =>
        new Broadcast(
          {
            pubsub: n.services.pubsub,
            membership: {
              selfId: ids[i],
              members: () => ids.map((id) => ({ id, state: 'alive' })),
            },
          },
          'edgeswarm/test-broadcast/1',
          (m) => got[i].push(m),
        ),
    );
    for (const c of channels) c.start();
    const sent = countSends(nodes);
    for (let i = 0; i < nodes.length; i++)
      for (let j = i + 1; j < nodes.length; j++) await nodes[i].dial(nodes[j].peerId);
    const subscribed = (i: number, topic: string) =>
      nodes[i].services.pubsub.getSubscribers(topic).length;
    await waitFor(() => nodes.every((_, i) => subscribed(i, channels[0].directTopic) === 8), {
      message: 'every node to see every other on the direct topic',
    });
    await new Promise((r) => setTimeout(r, 1500)); // a heartbeat builds the meshes
    const settle = () => new Promise((r) => setTimeout(r, 1000));

    await channels[0].publish(new TextEncoder().encode('one'));
    await waitFor(() => got.slice(1).every((g) => g.length === 1), { message: 'all to get one' });
    await settle(); // forwards, if any, would follow within milliseconds
    expect(channels[0].published).toEqual({ direct: 1, mesh: 0 });
    expect(got.map((g) => g.length)).toEqual([0, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(got[5][0].from).toBe(ids[0]); // signed: the publisher
    expect(sent.n).toBe(8); // the publisher's 8 copies and no forward

    // node 8 leaves the direct topic, as an agent without it would never join it: the next
    // message goes on the forwarded topic, and the mesh forwards it
    nodes[8].services.pubsub.unsubscribe(channels[8].directTopic);
    await waitFor(() => subscribed(0, channels[0].directTopic) === 7, {
      message: 'node 0 to see node 8 gone from the direct topic',
    });
    sent.n = 0;
    await channels[0].publish(new TextEncoder().encode('two'));
    await waitFor(() => got.slice(1).every((g) => g.length === 2), { message: 'all to get two' });
    await settle();
    expect(channels[0].published).toEqual({ direct: 1, mesh: 1 });
    expect(got.map((g) => g.length)).toEqual([0, 2, 2, 2, 2, 2, 2, 2, 2]);
    expect(sent.n).toBeGreaterThan(8);
    for (const c of channels) c.stop();
  });
});

describe('inbound connections without the cluster key', () => {
  it('1,050 silent TCP connections from one host do not keep a member from connecting', async () => {
    nodes = await startNodes(2);
    const [a, b] = nodes;
    const port = Number(b.getMultiaddrs()[0].toString().split('/')[4]);
    // The kernel holds the whole burst until the agent accepts it: with Node's default backlog
    // (511) about half of it overflowed, and those waited for SYN-ACK retransmissions (1 s, 3 s,
    // 7 s) before the gates could refuse them. `ss` shows a listener's backlog as its Send-Q.
    const backlog = listenBacklog(port);
    if (backlog !== undefined) expect(backlog).toBe(Math.min(TCP_BACKLOG, somaxconn()));
    // from 127.0.0.2 (all of 127/8 is loopback): another host than the member dialling from
    // 127.0.0.1. They held all 1,000 pending slots for 10 s, and members' dials were refused.
    const socks: Socket[] = [];
    await Promise.all(
      Array.from(
        { length: 1050 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }, resolve);
            s.resume(); // reads, so that it sees being closed
            s.on('error', () => resolve());
            s.on('close', () => resolve());
            socks.push(s);
          }),
      ),
    );
    try {
      // most are refused at once: one host may hold 64 handshakes (MAX_PENDING_PER_HOST); the
      // rest of the 1,000 slots stay free for members
      const open = () => socks.filter((s) => !s.destroyed && !s.closed).length;
      await waitFor(() => open() <= 64, { timeout: 4000, message: () => `${open()} open` });
      const conn = await a.dial(b.peerId, { signal: AbortSignal.timeout(4000) });
      expect(conn.status).toBe('open');
    } finally {
      for (const s of socks) s.destroy();
    }
  });
});

/** The listen backlog of the TCP listener on `port`, per `ss` (undefined without `ss`). */
function listenBacklog(port: number): number | undefined {
  let out: string;
  try {
    out = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
  } catch {
    return undefined; // no iproute2 (not Linux, or a minimal image)
  }
  const fields = out.trim().split(/\s+/);
  return Number(fields[2]); // State Recv-Q Send-Q Local Peer
}

function somaxconn(): number {
  try {
    return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  } catch {
    return Infinity;
  }
}
