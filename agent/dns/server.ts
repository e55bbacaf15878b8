// The DNS interface: UDP and TCP on one port. Malformed packets are counted and never disturb
// answers to anyone else: a query whose header reads but whose rest does not gets FORMERR (12
// bytes, no larger than what came), anything else (shorter than a header, or a response) is
// dropped. A UDP answer that does not fit (512 bytes, or the client's EDNS size up to 1232)
// is truncated with TC set so the client retries over TCP.
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import dnsPacket, { type DecodedPacket, type Packet } from 'dns-packet';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import {
  answerQuery,
  EDNS_UDP_SIZE,
  queriedService,
  withEdns,
  type DnsResolver,
} from './answer.js';

/** Largest UDP answer without EDNS (RFC 1035). */
export const UDP_PLAIN_LIMIT = 512;
/**
 * Largest UDP answer we send even if the client advertises more (bytes; EDNS_UDP_SIZE, 1232, the
 * DNS flag day 2020 value). It bounds amplification: a ~50-byte query gets at most ~25 times its
 * size back (it was 4096, ~80 times); a larger answer is truncated with TC and the client retries
 * over TCP, which needs a handshake and so cannot be aimed at a forged address.
 */
export const UDP_EDNS_LIMIT = EDNS_UDP_SIZE;
/**
 * A TCP client that completes no exchange (an answer handed to the kernel) for this long is
 * disconnected (ms; default 10 s, RFC 7766 suggests seconds). Bytes it sends do not count: a client
 * that sends queries and never reads its answers is closed too.
 */
export const TCP_IDLE_TIMEOUT_MS = 10_000;
/** Largest TCP query accepted (bytes). */
export const TCP_MAX_QUERY = 4096;
/**
 * Queries of one TCP connection being answered at once (default 16; an answer may wait up to
 * DNS_DHT_LOOKUP_MS on a DHT lookup). Beyond it the connection is not read until one completes.
 */
export const TCP_MAX_IN_FLIGHT = 16;
/**
 * Answer bytes one TCP connection may have waiting for its client to read (bytes; default 64 KiB,
 * about ten of the largest answers). Above it the connection is not read until they drain, so a
 * client that sends queries and never reads costs this much memory, not all of its answers (it
 * grew an agent by 640 MB in 40 s).
 */
export const TCP_MAX_WRITE_BUFFER = 64 * 1024;
/**
 * TCP clients connected at once (default 128); the server closes connections beyond it at once.
 * Together with the two limits above this bounds what DNS over TCP can hold: per connection 64
 * KiB of unread answers plus the up to 16 being written (checked before each query starts), a few
 * KB each (~1 MB a connection, ~140 MB over 128, only for services with hundreds of instances,
 * whose answers reach the 64 KiB a DNS message over TCP can carry).
 */
export const TCP_MAX_CLIENTS = 128;

export interface DnsServerOptions {
  host: string;
  port: number;
  resolver: DnsResolver;
  logger: Logger;
  registry?: Registry;
  ttl?: number;
  /** Default TCP_IDLE_TIMEOUT_MS (tests shorten it). */
  tcpIdleTimeoutMs?: number;
  /** Default TCP_MAX_CLIENTS. */
  tcpMaxClients?: number;
}

function ednsSize(q: DecodedPacket): number | undefined {
  for (const a of q.additionals ?? []) {
    if (a.type === 'OPT') return (a as unknown as { udpPayloadSize?: number }).udpPayloadSize;
  }
  return undefined;
}

const HEADER_BYTES = 12;

/**
 * FORMERR for a packet whose header is a query's (QR clear) but that does not decode: its id,
 * opcode and RD echoed, no sections (RFC 1035 4.1.1). Undefined for anything else.
 */
export function formatError(msg: Buffer): Buffer | undefined {
  if (msg.length < HEADER_BYTES || (msg[2] & 0x80) !== 0) return undefined;
  const out = Buffer.alloc(HEADER_BYTES);
  msg.copy(out, 0, 0, 2);
  out[2] = 0x80 | (msg[2] & 0x79); // QR, the opcode, RD
  out[3] = 1; // RCODE FORMERR
  return out;
}

export class DnsServer {
  readonly #opts: DnsServerOptions;
  #udp: Socket | undefined;
  #tcp: Server | undefined;
  readonly #tcpClients = new Set<TcpSocket>();
  readonly queries: Counter;
  readonly malformed: Counter;

  constructor(opts: DnsServerOptions) {
    this.#opts = opts;
    const registers = opts.registry ? [opts.registry] : [];
    this.queries = new Counter({
      name: 'edgeswarm_dns_queries_total',
      help: 'DNS queries answered, by transport and response code',
      labelNames: ['transport', 'rcode'],
      registers,
    });
    this.malformed = new Counter({
      name: 'edgeswarm_dns_malformed_total',
      help: 'DNS packets that could not be decoded (answered FORMERR when their header could)',
      labelNames: ['transport'],
      registers,
    });
  }

  get address(): { host: string; port: number } | undefined {
    const a = this.#udp?.address();
    return a ? { host: a.address, port: a.port } : undefined;
  }

  /**
   * Builds the answer bytes to one query, or undefined for garbage. A service name the catalog
   * does not know is first looked for in the DHT (resolver.find), so the answer may come later.
   */
  async #respond(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    let q: DecodedPacket;
    try {
      q = dnsPacket.decode(msg);
      if (q.type !== 'query') throw new Error('not a query');
    } catch {
      this.malformed.inc({ transport });
      return formatError(msg);
    }
    const { resolver } = this.#opts;
    const service = queriedService(q);
    if (service !== undefined && resolver.find && resolver.lookup(service, undefined) === undefined)
      await resolver.find(service).catch(() => {});
    let res: Packet;
    try {
      res = withEdns(q, answerQuery(q, this.#opts.resolver, { ttl: this.#opts.ttl }));
    } catch (err) {
      this.#opts.logger.warn({ err: (err as Error).message }, 'dns: could not answer');
      res = { type: 'response', id: q.id, flags: 2, questions: q.questions };
    }
    const rcode = (res.flags ?? 0) & 0xf;
    this.queries.inc({ transport, rcode: String(rcode) });
    let out = dnsPacket.encode(res);
    if (transport === 'udp') {
      const limit = Math.min(
        UDP_EDNS_LIMIT,
        Math.max(UDP_PLAIN_LIMIT, ednsSize(q) ?? UDP_PLAIN_LIMIT),
      );
      if (out.length > limit) {
        const answers = [...(res.answers ?? [])];
        // the OPT record stays: it is the client's EDNS answer, not data that can be dropped
        const opt = (res.additionals ?? []).filter((a) => a.type === 'OPT');
        let additionals = [...(res.additionals ?? [])];
        while (out.length > limit && (answers.length > 0 || additionals.length > opt.length)) {
          if (additionals.length > opt.length) additionals = opt;
          else answers.pop();
          out = dnsPacket.encode({
            ...res,
            flags: (res.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
            answers,
            additionals,
          });
        }
      }
    }
    return out;
  }

  async start(): Promise<void> {
    const { host, port } = this.#opts;
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, host, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const bound = udp.address().port;
      const tcp = createServer((sock) => this.#serveTcp(sock));
      tcp.maxConnections = this.#opts.tcpMaxClients ?? TCP_MAX_CLIENTS;
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(bound, host, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        // with port 0 the OS picked a UDP port whose TCP twin is taken: try another
        if (port === 0 && attempt < 5) continue;
        throw err;
      }
      udp.on('message', (msg, rinfo) => {
        void this.#respond(msg, 'udp').then((out) => {
          if (out && this.#udp === udp) udp.send(out, rinfo.port, rinfo.address);
        });
      });
      udp.on('error', (err) => this.#opts.logger.warn({ err: err.message }, 'dns udp error'));
      this.#udp = udp;
      this.#tcp = tcp;
      return;
    }
  }

  /**
   * One TCP client: length-prefixed queries (RFC 1035 4.2.2), answered as they complete. The
   * connection is read only while it has fewer than TCP_MAX_IN_FLIGHT queries being answered and
   * fewer than TCP_MAX_WRITE_BUFFER answer bytes its client has not taken.
   */
  #serveTcp(sock: TcpSocket): void {
    this.#tcpClients.add(sock);
    const idle = setTimeout(
      () => sock.destroy(),
      this.#opts.tcpIdleTimeoutMs ?? TCP_IDLE_TIMEOUT_MS,
    );
    sock.on('close', () => {
      clearTimeout(idle);
      this.#tcpClients.delete(sock);
    });
    sock.on('error', () => sock.destroy());
    let buf: Buffer = Buffer.alloc(0);
    let inFlight = 0;
    const pump = (): void => {
      while (buf.length >= 2) {
        if (inFlight >= TCP_MAX_IN_FLIGHT || sock.writableLength > TCP_MAX_WRITE_BUFFER) {
          sock.pause(); // resumed when an answer completes or the write buffer drains
          return;
        }
        const len = buf.readUInt16BE(0);
        if (len > TCP_MAX_QUERY || len === 0) {
          this.malformed.inc({ transport: 'tcp' });
          sock.destroy();
          return;
        }
        if (buf.length < 2 + len) break;
        const msg = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        inFlight++;
        void this.#respond(msg, 'tcp').then((out) => {
          inFlight--;
          if (!out) return sock.destroy();
          if (sock.destroyed) return;
          const frame = Buffer.alloc(2 + out.length);
          frame.writeUInt16BE(out.length, 0);
          out.copy(frame, 2);
          sock.write(frame, (err) => {
            if (!err && !sock.destroyed) idle.refresh();
          });
          pump();
        });
      }
      if (sock.isPaused()) sock.resume();
    };
    sock.on('drain', pump);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      pump();
    });
  }

  async stop(): Promise<void> {
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = undefined;
    this.#tcp = undefined;
    for (const s of this.#tcpClients) s.destroy();
    await Promise.all([
      udp ? new Promise<void>((r) => udp.close(() => r())) : undefined,
      tcp ? new Promise<void>((r) => tcp.close(() => r())) : undefined,
    ]);
  }
}
