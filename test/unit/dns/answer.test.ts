import dnsPacket, { type DecodedPacket } from 'dns-packet';
import { describe, expect, it } from 'vitest';
import {
  addressToHex,
  answerQuery,
  hexToAddress,
  parseName,
  type DnsResolver,
} from '../../../agent/dns/answer.js';

const resolver: DnsResolver = {
  lookup(name, site) {
    if (name === 'web') {
      const all = [
        { address: '10.0.0.2', port: 8080, node: 'a2', site: 'a' },
        { address: '10.0.1.1', port: 8081, node: 'b1', site: 'b' },
        { address: '10.0.1.1', port: 8082, node: 'b1', site: 'b' },
        { address: 'fd00::1', port: 9000, node: 'b2', site: 'b' },
      ];
      return all.filter((i) => site === undefined || i.site === site);
    }
    if (name === 'down') return [];
    return undefined;
  },
};

function query(name: string, type: string, flags = dnsPacket.RECURSION_DESIRED): DecodedPacket {
  const bytes = dnsPacket.encode({
    type: 'query',
    id: 42,
    flags,
    questions: [{ name, type: type as 'A' }],
  });
  return dnsPacket.decode(bytes);
}

interface Rr {
  name: string;
  type: string;
  ttl: number;
  data: unknown;
}
interface Decoded {
  id: number;
  rcode: string;
  flag_aa: boolean;
  answers: Rr[];
  additionals: Rr[];
}

function ask(name: string, type: string): Decoded {
  const res = answerQuery(query(name, type), resolver);
  return dnsPacket.decode(dnsPacket.encode(res)) as unknown as Decoded;
}

describe('DNS names', () => {
  it('parses service, site-scoped, RFC 2782 and addr names', () => {
    expect(parseName('web.service.edgeswarm.')).toEqual({ kind: 'service', service: 'web' });
    expect(parseName('WEB.Service.Paris.EdgeSwarm')).toEqual({
      kind: 'service',
      service: 'web',
      site: 'paris',
    });
    expect(parseName('_web._tcp.service.edgeswarm')).toEqual({ kind: 'service', service: 'web' });
    expect(parseName('0a000001.addr.edgeswarm')).toEqual({ kind: 'addr', address: '10.0.0.1' });
    expect(parseName('example.com')).toEqual({ kind: 'unknown' });
    expect(hexToAddress(addressToHex('192.168.1.20'))).toBe('192.168.1.20');
    expect(addressToHex('fd00::1')).toBe('fd000000000000000000000000000001');
  });
});

describe('answerQuery', () => {
  it('A: addresses of passing instances in order, deduplicated, TTL 0', () => {
    const r = ask('web.service.edgeswarm', 'A');
    expect(r.rcode).toBe('NOERROR');
    expect(r.flag_aa).toBe(true);
    expect(r.id).toBe(42);
    expect(r.answers.map((a) => a.data)).toEqual(['10.0.0.2', '10.0.1.1']);
    expect(r.answers.every((a) => a.ttl === 0)).toBe(true);
    expect(ask('web.service.edgeswarm', 'AAAA').answers.map((a) => a.data)).toEqual(['fd00::1']);
  });

  it('site-scoped names keep to one site', () => {
    expect(ask('web.service.a.edgeswarm', 'A').answers.map((a) => a.data)).toEqual(['10.0.0.2']);
  });

  it('SRV answers carry ports and the targets resolve in the additional section', () => {
    const r = ask('web.service.b.edgeswarm', 'SRV');
    const srv = r.answers.map((a) => a.data as { port: number; target: string });
    expect(srv.map((s) => s.port)).toEqual([8081, 8082, 9000]);
    expect(srv[0].target).toBe('0a000101.addr.edgeswarm');
    expect(r.additionals.map((a) => [a.name, a.type, a.data])).toEqual([
      ['0a000101.addr.edgeswarm', 'A', '10.0.1.1'],
      ['fd000000000000000000000000000001.addr.edgeswarm', 'AAAA', 'fd00::1'],
    ]);
    expect(ask('0a000101.addr.edgeswarm', 'A').answers[0].data).toBe('10.0.1.1');
  });

  it('SRV priorities say nearest first: one per site, in the order of the answer', () => {
    // every record had priority 1, so RFC 2782 clients picked among all sites at random
    const srv = ask('web.service.edgeswarm', 'SRV').answers.map(
      (a) => a.data as { priority: number; weight: number; port: number },
    );
    expect(srv.map((s) => [s.port, s.priority, s.weight])).toEqual([
      [8080, 1, 1],
      [8081, 2, 1],
      [8082, 2, 1],
      [9000, 2, 1],
    ]);
    // sites that interleave in the order (no RTT estimates yet) keep one priority each
    const mixed: DnsResolver = {
      lookup: () => [
        { address: '10.0.0.1', port: 1, node: 'a1', site: 'a' },
        { address: '10.0.1.1', port: 2, node: 'b1', site: 'b' },
        { address: '10.0.0.2', port: 3, node: 'a2', site: 'a' },
      ],
    };
    const res = dnsPacket.decode(
      dnsPacket.encode(answerQuery(query('web.service.edgeswarm', 'SRV'), mixed)),
    ) as unknown as Decoded;
    expect(res.answers.map((a) => (a.data as { priority: number }).priority)).toEqual([1, 2, 1]);
  });

  it('unknown names are NXDOMAIN, known names with nothing passing are empty NOERROR, other zones REFUSED', () => {
    expect(ask('nope.service.edgeswarm', 'A').rcode).toBe('NXDOMAIN');
    expect(ask('garbage.edgeswarm', 'A').rcode).toBe('NXDOMAIN');
    const down = ask('down.service.edgeswarm', 'A');
    expect(down.rcode).toBe('NOERROR');
    expect(down.answers).toHaveLength(0);
    expect(ask('example.com', 'A').rcode).toBe('REFUSED');
    expect(ask('web.service.edgeswarm', 'TXT').answers).toHaveLength(0);
  });

  it('negative answers carry the zone SOA; an SOA query for the zone gets it', () => {
    const full = (name: string, type: string) =>
      dnsPacket.decode(dnsPacket.encode(answerQuery(query(name, type), resolver))) as unknown as {
        rcode: string;
        answers: Rr[];
        authorities: Rr[];
      };
    for (const [name, type, rcode] of [
      ['nope.service.edgeswarm', 'A', 'NXDOMAIN'],
      ['down.service.edgeswarm', 'A', 'NOERROR'],
      ['web.service.edgeswarm', 'TXT', 'NOERROR'],
    ]) {
      const r = full(name, type);
      expect(r.rcode, name).toBe(rcode);
      expect(
        r.authorities.map((a) => [a.name, a.type]),
        name,
      ).toEqual([['edgeswarm', 'SOA']]);
    }
    expect(full('web.service.edgeswarm', 'A').authorities).toEqual([]);
    expect(full('example.com', 'A').authorities).toEqual([]);
    const soa = full('edgeswarm', 'SOA');
    expect(soa.answers.map((a) => a.type)).toEqual(['SOA']);
    expect(soa.authorities).toEqual([]);
  });

  it('another opcode is NOTIMP with the opcode echoed; another class is REFUSED', () => {
    // dig discarded the NOTIMP to +opcode=status, which came back with opcode 0
    const status = dnsPacket.encode({
      type: 'query',
      id: 7,
      flags: (2 << 11) | dnsPacket.RECURSION_DESIRED,
      questions: [{ name: 'web.service.edgeswarm', type: 'A' }],
    });
    const res = dnsPacket.decode(
      dnsPacket.encode(answerQuery(dnsPacket.decode(status), resolver)),
    ) as unknown as Decoded & { opcode: string; flag_rd: boolean };
    expect([res.id, res.rcode, res.opcode, res.flag_rd]).toEqual([7, 'NOTIMP', 'STATUS', true]);
    const chaos = dnsPacket.encode({
      type: 'query',
      id: 8,
      questions: [{ name: 'web.service.edgeswarm', type: 'A', class: 'CH' }],
    });
    const ch = dnsPacket.decode(
      dnsPacket.encode(answerQuery(dnsPacket.decode(chaos), resolver)),
    ) as unknown as Decoded;
    expect(ch.rcode).toBe('REFUSED');
    expect(ch.answers).toHaveLength(0);
  });
});
