// A load generator in its own process, for query latency: sends COUNT requests one after another
// (after a warm-up) and prints {p50, p99, p999, max, rps} in microseconds.
//   node loadgen.js http URL TOKEN COUNT
//   node loadgen.js dns HOST PORT NAME TYPE COUNT
import { createSocket } from 'node:dgram';
import { Agent, request } from 'node:http';
import dnsPacket from 'dns-packet';

function summarize(us: number[], wallMs: number): Record<string, number> {
  const s = [...us].sort((a, b) => a - b);
  const p = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return {
    count: s.length,
    p50_us: Math.round(p(0.5)),
    p99_us: Math.round(p(0.99)),
    p999_us: Math.round(p(0.999)),
    max_us: Math.round(s[s.length - 1]),
    rps: Math.round(s.length / (wallMs / 1000)),
  };
}

/** 2,000 warm-up requests, then `count` timed one at a time; prints the summary as JSON. */
async function measure(one: () => Promise<void>, count: number): Promise<void> {
  for (let i = 0; i < Math.min(2000, count); i++) await one();
  const us: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const s = performance.now();
    await one();
    us.push((performance.now() - s) * 1000);
  }
  process.stdout.write(`${JSON.stringify(summarize(us, performance.now() - t0))}\n`);
}

async function http(url: string, token: string, count: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        url,
        { agent, headers: token ? { authorization: `Bearer ${token}` } : {} },
        (res) => {
          res.on('data', () => {});
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  await measure(one, count);
  agent.destroy();
}

async function dns(
  host: string,
  port: number,
  name: string,
  type: string,
  count: number,
): Promise<void> {
  const sock = createSocket('udp4');
  let pending: ((b: Buffer) => void) | undefined;
  sock.on('message', (m) => pending?.(m));
  let id = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const q = dnsPacket.encode({
        type: 'query',
        id: ++id & 0xffff,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ type: type as 'A', name }],
      });
      const t = setTimeout(() => reject(new Error('dns timeout')), 2000);
      pending = (m) => {
        clearTimeout(t);
        if (m.readUInt16BE(0) === (id & 0xffff)) resolve();
      };
      sock.send(q, port, host);
    });
  await measure(one, count);
  sock.close();
}

const [mode, ...a] = process.argv.slice(2);
if (mode === 'http') await http(a[0], a[1], Number(a[2]));
else if (mode === 'dns') await dns(a[0], Number(a[1]), a[2], a[3], Number(a[4]));
else {
  process.stderr.write('usage: loadgen.js http URL TOKEN COUNT | dns HOST PORT NAME TYPE COUNT\n');
  process.exit(2);
}
