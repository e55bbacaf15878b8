// A minimal server-sent-events reader for the benchmarks: calls back with each event's data and
// the time it arrived.
export interface SseHandle {
  close(): void;
  done: Promise<void>;
}

export async function watchSse(
  url: string,
  token: string,
  onData: (data: string, at: number) => void,
): Promise<SseHandle> {
  const ac = new AbortController();
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${token}` },
    signal: ac.signal,
  });
  if (!res.ok || !res.body) throw new Error(`watch ${url}: ${res.status}`);
  const dec = new TextDecoder();
  const done = (async () => {
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        const at = performance.now();
        buf += dec.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of block.split('\n'))
            if (line.startsWith('data: ')) onData(line.slice(6), at);
        }
      }
    } catch {
      // closed
    }
  })();
  return { close: () => ac.abort(), done };
}
