import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';
import { AgentMetrics, EVENT_LOOP_LAG_RESOLUTION_MS } from '../../../agent/metrics.js';

const R_S = EVENT_LOOP_LAG_RESOLUTION_MS / 1000;

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  if (!m) throw new Error(`${name} not in /metrics`);
  return Number(m[1]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AgentMetrics event-loop lag', () => {
  it('is sampled every EVENT_LOOP_LAG_RESOLUTION_MS, not every 10 ms', () => {
    // prom-client (CommonJS) calls perf_hooks.monitorEventLoopDelay on this same module object
    const perfHooks = createRequire(import.meta.url)('perf_hooks') as typeof import('perf_hooks');
    const spy = vi.spyOn(perfHooks, 'monitorEventLoopDelay');
    try {
      new AgentMetrics();
      expect(spy).toHaveBeenCalledWith({ resolution: EVENT_LOOP_LAG_RESOLUTION_MS });
    } finally {
      spy.mockRestore();
    }
  });

  it('reads the lag itself, not the sampling interval, on an idle loop', async () => {
    const metrics = new AgentMetrics();
    await sleep(2 * EVENT_LOOP_LAG_RESOLUTION_MS);
    await metrics.text(); // a scrape resets the samples
    await sleep(10 * EVENT_LOOP_LAG_RESOLUTION_MS);
    // prom-client's own figure is the interval plus the lag, at least R_S; the lag alone is far
    // below it (a median of ~10 samples, so a stall or two of a loaded machine does not move it)
    expect(gauge(await metrics.text(), 'nodejs_eventloop_lag_p50_seconds')).toBeLessThan(R_S * 0.8);
  });
});
