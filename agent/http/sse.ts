// Server-sent events: one `data:` line of JSON per event, a comment every 15 s to keep proxies and
// idle timeouts from closing the stream.
import type { ServerResponse } from 'node:http';

export const SSE_KEEPALIVE_MS = 15_000;

export class SseStream {
  readonly #res: ServerResponse;
  readonly #timer: NodeJS.Timeout;
  #closed = false;
  #id = 0;

  constructor(res: ServerResponse, onClose: () => void) {
    this.#res = res;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': edgeswarm watch\n\n');
    this.#timer = setInterval(() => res.write(': keepalive\n\n'), SSE_KEEPALIVE_MS);
    this.#timer.unref();
    res.on('close', () => {
      this.#closed = true;
      clearInterval(this.#timer);
      onClose();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(event: string, data: unknown): void {
    if (this.#closed) return;
    this.#res.write(`id: ${++this.#id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}
