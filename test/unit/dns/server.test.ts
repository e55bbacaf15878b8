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
        name === 'web' ? [{ address: '10.0.0.1', port: 80, node: 'n1' }] : undefined,
    },
    logger: createLogger('silent'),
    registry: new Registry(),
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

  it('formatError echoes only the id, opcode and RD', () => {
    const q = Buffer.alloc(12, 0xff);
    q[2] = 0x7f; // QR clear, opcode 15, AA, TC, RD
    expect([...formatError(q)!]).toEqual([0xff, 0xff, 0xf9, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});
