import { describe, expect, it } from 'vitest';
import { AgentMetrics, EVENT_LOOP_LAG_RESOLUTION_MS } from '../../../agent/metrics.js';

const R_S = EVENT_LOOP_LAG_RESOLUTION_MS / 1000;

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  if (!m) throw new Error(`${name} not in /metrics`);
  return Number(m[1]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AgentMetrics event-loop lag', () => {
  it('reads the lag itself, not the sampling interval, on an idle loop', async () => {
    const metrics = new AgentMetrics();
    await sleep(2 * EVENT_LOOP_LAG_RESOLUTION_MS);
    await metrics.text(); // a scrape resets the samples
    await sleep(4 * EVENT_LOOP_LAG_RESOLUTION_MS);
    const text = await metrics.text();
    // prom-client's own figure is the interval plus the lag: ~0.1 s here
    expect(gauge(text, 'nodejs_eventloop_lag_p50_seconds')).toBeLessThan(R_S / 2);
    expect(gauge(text, 'nodejs_eventloop_lag_min_seconds')).toBeGreaterThanOrEqual(0);
  });
});
