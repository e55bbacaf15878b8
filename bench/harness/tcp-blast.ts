// Raw TCP baseline for the benchmarks, run as its own process (inside a lab host with
// `ip netns exec`, or on loopback):
//   node tcp-blast.js recv HOST PORT BYTES          prints {"ms":...} once BYTES have arrived
//   node tcp-blast.js send FILE HOST:PORT...         streams FILE to every receiver at once
import { createReadStream } from 'node:fs';
import { connect, createServer } from 'node:net';

const [mode, ...rest] = process.argv.slice(2);

if (mode === 'recv') {
  const [host, port, bytes] = rest;
  const want = Number(bytes);
  let got = 0;
  let t0 = 0;
  const server = createServer((sock) => {
    t0 ||= performance.now();
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= want) {
        process.stdout.write(`${JSON.stringify({ ms: performance.now() - t0, bytes: got })}\n`);
        process.exit(0);
      }
    });
  });
  server.listen(Number(port), host, () => process.stdout.write('{"ready":true}\n'));
} else if (mode === 'send') {
  const [file, ...targets] = rest;
  let left = targets.length;
  for (const t of targets) {
    const i = t.lastIndexOf(':');
    const sock = connect(Number(t.slice(i + 1)), t.slice(0, i), () => {
      createReadStream(file, { highWaterMark: 1 << 20 })
        .pipe(sock)
        .on('finish', () => {
          if (--left === 0) process.exit(0);
        });
    });
    sock.on('error', (err) => {
      process.stderr.write(`${t}: ${err.message}\n`);
      process.exit(1);
    });
  }
} else {
  process.stderr.write('usage: tcp-blast.js recv HOST PORT BYTES | send FILE HOST:PORT...\n');
  process.exit(2);
}
