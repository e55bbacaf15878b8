// Answers DNS queries for the edgeswarm zone from the local catalog (pure: the resolver is passed
// in). Names:
//   NAME.service.edgeswarm             A/AAAA of passing instances, nearest first; SRV with the
//   NAME.service.SITE.edgeswarm        targets' addresses in the additional section (one site)
//   _NAME._tcp.service[.SITE].edgeswarm  the same (RFC 2782 form)
//   HEX.addr.edgeswarm                 the address behind an SRV target
// An unknown service is NXDOMAIN; a known one with no passing instance is an empty NOERROR.
import { isIPv4, isIPv6 } from 'node:net';
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';

export const DNS_DOMAIN = 'edgeswarm';

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;
const AA = 1 << 10;
const RD = 1 << 8;

export interface DnsInstance {
  address: string;
  port: number;
  node: string;
  site: string;
}

export interface DnsResolver {
  /** Passing instances of `name` (in `site` if given), best first; undefined if the name is unknown. */
  lookup(name: string, site: string | undefined): DnsInstance[] | undefined;
  /**
   * Tries to learn a name lookup() does not know (a DHT lookup), resolving when done or given up;
   * the server calls it before answering such a name. Optional.
   */
  find?(name: string): Promise<void>;
}

/** The service name a query asks about, if it asks about one. */
export function queriedService(query: DecodedPacket): string | undefined {
  const qs = query.questions ?? [];
  if (qs.length !== 1) return undefined;
  const parsed = parseName(qs[0].name);
  return parsed.kind === 'service' ? parsed.service : undefined;
}

export interface AnswerOptions {
  /** TTL of every record, seconds (default 0: always ask again). */
  ttl?: number;
}

type ParsedName =
  | { kind: 'service'; service: string; site?: string }
  | { kind: 'addr'; address: string }
  | { kind: 'zone' }
  | { kind: 'unknown' };

/** "0a000001" → "10.0.0.1"; 32 hex digits → an IPv6 address. */
export function hexToAddress(hex: string): string | undefined {
  if (/^[0-9a-f]{8}$/.test(hex))
    return [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
  if (/^[0-9a-f]{32}$/.test(hex)) return hex.match(/.{4}/g)!.join(':');
  return undefined;
}

export function addressToHex(address: string): string {
  if (isIPv4(address))
    return address
      .split('.')
      .map((o) => Number(o).toString(16).padStart(2, '0'))
      .join('');
  // expand an IPv6 address to 8 groups of 4 hex digits
  const [head, tail] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail !== undefined ? new Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].map((g) => g.padStart(4, '0')).join('');
}

export function parseName(qname: string): ParsedName {
  const labels = qname.toLowerCase().replace(/\.$/, '').split('.');
  if (labels[labels.length - 1] !== DNS_DOMAIN) return { kind: 'unknown' };
  const rest = labels.slice(0, -1);
  if (rest.length === 0) return { kind: 'zone' };
  if (rest.length === 2 && rest[1] === 'addr') {
    const address = hexToAddress(rest[0]);
    return address ? { kind: 'addr', address } : { kind: 'unknown' };
  }
  let svc = rest;
  if (svc.length >= 3 && svc[0].startsWith('_') && svc[1] === '_tcp')
    svc = [svc[0].slice(1), ...svc.slice(2)];
  if (svc.length === 2 && svc[1] === 'service') return { kind: 'service', service: svc[0] };
  if (svc.length === 3 && svc[1] === 'service')
    return { kind: 'service', service: svc[0], site: svc[2] };
  return { kind: 'unknown' };
}

function addrRecord(name: string, address: string, ttl: number): Answer {
  return isIPv6(address)
    ? { name, type: 'AAAA', ttl, data: address }
    : { name, type: 'A', ttl, data: address };
}

/**
 * The zone's SOA record: in the authority section of a negative answer (NXDOMAIN, or no record of
 * the type asked) so that resolvers can cache it (RFC 2308; for `minimum` seconds, 0 here, as
 * every answer has TTL 0), and the answer to an SOA query for the zone itself.
 */
export function zoneSoa(): Answer {
  return {
    name: DNS_DOMAIN,
    type: 'SOA',
    ttl: 0,
    data: {
      mname: `ns.${DNS_DOMAIN}`,
      rname: `hostmaster.${DNS_DOMAIN}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: 0,
    },
  };
}

/** Builds the response to a query packet. */
export function answerQuery(
  query: DecodedPacket,
  resolver: DnsResolver,
  opts: AnswerOptions = {},
): Packet {
  const res = answerRecords(query, resolver, opts);
  const rcode = (res.flags ?? 0) & 0xf;
  const q = query.questions?.[0];
  const kind = q ? parseName(q.name).kind : 'unknown';
  if (rcode === RCODE.NOERROR && kind === 'zone' && q?.type === 'SOA')
    return { ...res, answers: [zoneSoa()] };
  // NXDOMAIN is only ever given for names in the zone; an empty NOERROR may be for one outside
  const noData = rcode === RCODE.NOERROR && (res.answers ?? []).length === 0 && kind !== 'unknown';
  return rcode === RCODE.NXDOMAIN || noData ? { ...res, authorities: [zoneSoa()] } : res;
}

function answerRecords(query: DecodedPacket, resolver: DnsResolver, opts: AnswerOptions): Packet {
  const ttl = opts.ttl ?? 0;
  const questions = query.questions ?? [];
  const base = { type: 'response' as const, id: query.id, questions };
  const rd = (query.flags ?? 0) & RD;
  const reply = (rcode: number, answers: Answer[] = [], additionals: Answer[] = []): Packet => ({
    ...base,
    flags: AA | rd | rcode,
    answers,
    additionals,
  });
  const opcode = ((query.flags ?? 0) >> 11) & 0xf;
  // the opcode is echoed (RFC 1035 4.1.1): dig dropped a NOTIMP to +opcode=status that had 0
  if (opcode !== 0)
    return { ...base, flags: (opcode << 11) | rd | RCODE.NOTIMP, answers: [], additionals: [] };
  if (questions.length !== 1) return reply(RCODE.FORMERR);
  const q: Question = questions[0];
  // only the Internet class is served (CHAOS `version.bind` and the like are not ours)
  const qclass = q.class as string | undefined;
  if (qclass !== undefined && qclass !== 'IN' && qclass !== 'ANY') return reply(RCODE.REFUSED);
  // dns-packet's types omit ANY (255), which it decodes as the string 'ANY'
  const isAny = (q.type as string) === 'ANY';
  const parsed = parseName(q.name);
  if (parsed.kind === 'unknown') {
    return reply(
      q.name.toLowerCase().replace(/\.$/, '').endsWith(DNS_DOMAIN) ? RCODE.NXDOMAIN : RCODE.REFUSED,
    );
  }
  if (parsed.kind === 'zone') return reply(RCODE.NOERROR);
  if (parsed.kind === 'addr') {
    const wantV6 = isIPv6(parsed.address);
    if ((q.type === 'A' && !wantV6) || (q.type === 'AAAA' && wantV6) || isAny)
      return reply(RCODE.NOERROR, [addrRecord(q.name, parsed.address, ttl)]);
    return reply(RCODE.NOERROR);
  }
  const instances = resolver.lookup(parsed.service, parsed.site);
  if (instances === undefined) return reply(RCODE.NXDOMAIN);
  if (q.type === 'SRV') {
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    const seen = new Set<string>();
    // Nearest first, in the record itself: clients pick by priority (lowest first) and at random
    // among equal ones (RFC 2782), ignoring the order. Each site gets the next priority where it
    // first appears in the ordered list, so a site's instances share the load (sites can
    // interleave in the order when members have no RTT estimate yet) and the nearest is tried first.
    const priorities = new Map<string, number>();
    for (const inst of instances) {
      let priority = priorities.get(inst.site);
      if (priority === undefined) priorities.set(inst.site, (priority = priorities.size + 1));
      const target = `${addressToHex(inst.address)}.addr.${DNS_DOMAIN}`;
      answers.push({
        name: q.name,
        type: 'SRV',
        ttl,
        data: { priority, weight: 1, port: inst.port, target },
      });
      if (!seen.has(target)) {
        seen.add(target);
        additionals.push(addrRecord(target, inst.address, ttl));
      }
    }
    return reply(RCODE.NOERROR, answers, additionals);
  }
  if (q.type === 'A' || q.type === 'AAAA' || isAny) {
    const seen = new Set<string>();
    const answers: Answer[] = [];
    for (const inst of instances) {
      if (seen.has(inst.address)) continue;
      const v6 = isIPv6(inst.address);
      if ((q.type === 'A' && v6) || (q.type === 'AAAA' && !v6)) continue;
      seen.add(inst.address);
      answers.push(addrRecord(q.name, inst.address, ttl));
    }
    return reply(RCODE.NOERROR, answers);
  }
  return reply(RCODE.NOERROR);
}

/**
 * The UDP payload size this server advertises in its OPT record and the largest UDP answer it
 * sends (bytes; RFC 6891). 1232 is the DNS flag day 2020 value: it fits an IPv6 packet with no
 * fragmentation, and bounds what a forged-source query can reflect (server.ts UDP_EDNS_LIMIT).
 */
export const EDNS_UDP_SIZE = 1232;

/**
 * EDNS (RFC 6891) for a response: a query with an OPT record gets one back (it got none, which
 * strict resolvers treat as a server without EDNS), and a query of an EDNS version above 0 gets
 * BADVERS (extended rcode 16: 1 in the OPT record, 0 in the header) and no answers.
 */
export function withEdns(query: DecodedPacket, res: Packet): Packet {
  const opt = (query.additionals ?? []).find((a) => a.type === 'OPT') as
    { ednsVersion?: number } | undefined;
  if (!opt) return res;
  const badVersion = (opt.ednsVersion ?? 0) > 0;
  const record = {
    type: 'OPT',
    name: '.',
    udpPayloadSize: EDNS_UDP_SIZE,
    extendedRcode: badVersion ? 1 : 0,
    ednsVersion: 0,
    flags: 0,
    options: [],
  } as unknown as Answer; // dns-packet's Answer union has no OPT member with these fields
  if (badVersion)
    return {
      ...res,
      flags: (res.flags ?? 0) & ~0xf,
      answers: [],
      authorities: [],
      additionals: [record],
    };
  return { ...res, additionals: [...(res.additionals ?? []), record] };
}
