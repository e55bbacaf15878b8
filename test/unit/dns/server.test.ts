// The DNS server's sockets: a query that does not decode gets FORMERR when its header does, over
// UDP and TCP; shorter garbage and responses get nothing; answers to others are not disturbed.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket from 'dns-packet';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DnsServer, formatError } from '../../../agent/dns/server.js';
import { createLogger } from '../../../agent/logger.js';

let server: DnsServer;
let port: number;
beforeEach(async () => {
  server = new DnsServer({
    host: '127.0.0.1',
    port: 0,
    resolver: {
      lookup: (name) =>
        name === 'web'
          ? [{ address: '10.0.0.1', port: 80, node: 'n1', site: 's' }]
          : name === 'many'
            ? Array.from({ length: 100 }, (_, i) => ({
                address: `10.0.1.${i}`,
                port: 80,
                node: 'n',
                site: 's',
              }))
            : undefined,
    },
    logger: createLogger('silent'),
    registry: new Registry(),
    tcpIdleTimeoutMs: 1000,
    tcpMaxClients: 20,
  });
  await server.start();
  port = server.address!.port;
});
afterEach(async () => {
  await server.stop();
});

/** Sends each packet over UDP; returns the replies that came within 300 ms. */
async function udp(...packets: Buffer[]): Promise<Buffer[]> {
  const sock = createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  for (const p of packets) sock.send(p, port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 300));
  sock.close();
  return got;
}

const FORMERR = 1;
const rcode = (reply: Buffer): number => reply[3] & 0xf;

/** A query for web.service.edgeswarm A with this id, cut after `keep` bytes. */
function query(id: number, keep = Infinity): Buffer {
  const full = dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', name: 'web.service.edgeswarm' }],
  });
  return full.subarray(0, Math.min(keep, full.length));
}

describe('DnsServer', () => {
  it('answers a query whose question is cut short with FORMERR, its id and RD', async () => {
    const [reply, ...rest] = await udp(query(0x1234, 20));
    expect(rest).toEqual([]);
    const d = dnsPacket.decode(reply);
    expect(d.id).toBe(0x1234);
    expect(d.type).toBe('response');
    expect(rcode(reply)).toBe(FORMERR);
    expect((d.flags ?? 0) & dnsPacket.RECURSION_DESIRED).toBeTruthy();
    expect(reply.length).toBe(12);
    expect(await server.malformed.get()).toMatchObject({ values: [{ value: 1 }] });
  });

  it('drops garbage shorter than a header and packets that are responses, and still answers', async () => {
    const response = Buffer.from(query(7, 20));
    response[2] |= 0x80;
    const replies = await udp(Buffer.from([1, 2, 3]), response, query(9));
    expect(replies).toHaveLength(1);
    const d = dnsPacket.decode(replies[0]);
    expect(d.id).toBe(9);
    expect(d.answers?.map((a) => (a as { data?: unknown }).data)).toEqual(['10.0.0.1']);
  });

  it('answers FORMERR over TCP too, and keeps the connection', async () => {
    const sock = connect(port, '127.0.0.1');
    const frames: Buffer[] = [];
    let buf = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        frames.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
    });
    const send = (p: Buffer) => {
      const f = Buffer.alloc(2 + p.length);
      f.writeUInt16BE(p.length, 0);
      p.copy(f, 2);
      sock.write(f);
    };
    send(query(1, 15));
    send(query(2));
    await new Promise((r) => setTimeout(r, 300));
    sock.destroy();
    expect(frames.map((f) => [dnsPacket.decode(f).id, rcode(f)])).toEqual([
      [1, FORMERR],
      [2, 0],
    ]);
  });

  it('EDNS: an OPT record in the query gets one back, kept when the answer is truncated; version 1 is BADVERS', async () => {
    const ask = async (name: string, opt?: { size: number; version: number }) => {
      const q = dnsPacket.encode({
        type: 'query',
        id: 9,
        questions: [{ type: 'A', name }],
        additionals: opt
          ? [
              {
                type: 'OPT',
                name: '.',
                udpPayloadSize: opt.size,
                ednsVersion: opt.version,
              } as unknown as dnsPacket.Answer,
            ]
          : [],
      });
      const [reply] = await udp(q);
      const d = dnsPacket.decode(reply) as unknown as {
        flag_tc: boolean;
        rcode: string;
        answers: unknown[];
        additionals: Array<{ type: string; extendedRcode?: number; udpPayloadSize?: number }>;
      };
      return { d, size: reply.length, opts: d.additionals.filter((a) => a.type === 'OPT') };
    };
    const plain = await ask('web.service.edgeswarm');
    expect(plain.opts).toEqual([]);
    // 100 addresses (~1.7 KB) do not fit in 1232 bytes even if the client takes 4096: the
    // answer to a ~50-byte query stays under 1232 (amplification ~25x, not ~80x)
    const big = await ask('many.service.edgeswarm', { size: 4096, version: 0 });
    expect(big.d.flag_tc).toBe(true);
    expect(big.size).toBeLessThanOrEqual(1232);
    expect(big.d.answers.length).toBeGreaterThan(0);
    expect(big.opts).toMatchObject([{ udpPayloadSize: 1232 }]);
    const edns = await ask('web.service.edgeswarm', { size: 1232, version: 0 });
    expect(edns.d.answers).toHaveLength(1);
    expect(edns.opts).toMatchObject([{ udpPayloadSize: 1232, extendedRcode: 0 }]);
    // 100 addresses do not fit in 512 bytes: truncated, and the OPT record survives the cut
    const cut = await ask('many.service.edgeswarm', { size: 512, version: 0 });
    expect(cut.d.flag_tc).toBe(true);
    expect(cut.size).toBeLessThanOrEqual(512);
    expect(cut.d.answers.length).toBeGreaterThan(0);
    expect(cut.opts).toHaveLength(1);
    // BADVERS is extended rcode 16: 1 in the OPT record above a header rcode of 0
    const v1 = await ask('web.service.edgeswarm', { size: 1232, version: 1 });
    expect(v1.d.answers).toEqual([]);
    expect(v1.opts).toMatchObject([{ extendedRcode: 1 }]);
  });

  it('TCP: a client that sends queries and never reads is not buffered for, and is closed', async () => {
    // 3000 SRV queries for 100 instances: ~20 MB of answers if all were answered and buffered
    const srv = dnsPacket.encode({
      type: 'query',
      id: 1,
      questions: [{ type: 'SRV', name: 'many.service.edgeswarm' }],
    });
    const frame = Buffer.alloc(2 + srv.length);
    frame.writeUInt16BE(srv.length, 0);
    srv.copy(frame, 2);
    const before = process.memoryUsage().arrayBuffers;
    const sock = connect(port, '127.0.0.1');
    sock.pause(); // never reads
    const closed = new Promise<number>((r) => sock.on('close', () => r(Date.now())));
    sock.on('error', () => {});
    sock.write(Buffer.concat(Array.from({ length: 3000 }, () => frame)));
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    // what the agent holds for it: the kernel's socket buffers (a few MB on loopback), plus at
    // most TCP_MAX_WRITE_BUFFER and the in-flight answers, not the ~20 MB
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown).toBeLessThan(4 * 1024 * 1024);
    const answered = (await server.queries.get()).values.reduce((n, v) => n + v.value, 0);
    expect(answered).toBeLessThan(3000);
    // no exchange completes any more: closed after the idle timeout (1 s here), which the
    // client sees once it reads
    await new Promise((r) => setTimeout(r, 1000));
    sock.resume();
    expect((await closed) - t0).toBeLessThan(4000);
  });

  it('TCP: clients beyond the limit are closed at once; a client that sends nothing is closed when idle', async () => {
    const socks = await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          new Promise<ReturnType<typeof connect>>((r) => {
            const s = connect(port, '127.0.0.1', () => r(s));
            s.on('error', () => {});
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 100));
    const extra = connect(port, '127.0.0.1');
    extra.on('error', () => {});
    const t0 = Date.now();
    await new Promise((r) => extra.on('close', r));
    expect(Date.now() - t0).toBeLessThan(500);
    // the 20 idle ones go after tcpIdleTimeoutMs (1 s here)
    await Promise.all(
      socks.map((s) => new Promise((r) => (s.destroyed ? r(0) : s.on('close', r)))),
    );
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('formatError echoes only the id, opcode and RD', () => {
    const q = Buffer.alloc(12, 0xff);
    q[2] = 0x7f; // QR clear, opcode 15, AA, TC, RD
    expect([...formatError(q)!]).toEqual([0xff, 0xff, 0xf9, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});
