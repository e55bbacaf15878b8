// Routes about the agent itself: health, identity, join, leave, metrics.
import { z } from 'zod';
import type { Agent } from '../../agent.js';
import { HttpError } from '../../errors.js';
import { peerAddrSchema } from '../../peer-addr.js';
import type { Route } from '../router.js';

export const joinBodySchema = z
  .object({
    addrs: z.array(peerAddrSchema('dial')).min(1, 'give at least one address').max(64),
  })
  .strict();

export function agentRoutes(agent: Agent): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/health',
      auth: false,
      query: 'any',
      handler: () => ({ json: { status: 'ok' } }),
    },
    {
      method: 'GET',
      path: '/metrics',
      auth: false,
      query: 'any',
      handler: async () => ({
        body: await agent.metrics.text(),
        headers: { 'content-type': agent.metrics.contentType },
      }),
    },
    { method: 'GET', path: '/v1/agent', handler: () => ({ json: agent.info() }) },
    {
      method: 'POST',
      path: '/v1/join',
      handler: async (ctx) => {
        const body = await ctx.json(joinBodySchema);
        const results = await agent.join(body.addrs, ctx.signal);
        // one peer reached through two addresses is one join ({addrs:[X,X]} answered joined: 2)
        const peers = [...new Set(results.flatMap((r) => (r.peerId ? [r.peerId] : [])))];
        const joined = peers.length;
        const failed = results
          .filter((r) => r.error)
          .map((r) => ({ addr: r.addr, error: r.error }));
        if (joined === 0) {
          throw new HttpError(
            502,
            'join_failed',
            `could not join through any address: ${failed.map((f) => `${f.addr}: ${f.error}`).join('; ')}`,
          );
        }
        return {
          json: { joined, peers, failed },
        };
      },
    },
    {
      method: 'POST',
      path: '/v1/leave',
      handler: (ctx) => {
        ctx.res.once('finish', () => void agent.leaveAndExit());
        return { json: { leaving: true } };
      },
    },
  ];
}
