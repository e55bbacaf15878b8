// Test helpers for real agents: useCluster() gives each test a TestCluster that is cleaned up
// after it, even when it fails.
import { afterEach } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import type { EdgeNode } from '../../agent/node.js';
import { TestCluster } from '../../bench/harness/test-cluster.js';

export {
  AgentProcess,
  CLI,
  requireBuild,
  type LogLine,
} from '../../bench/harness/agent-process.js';
export {
  TestCluster,
  type InProcessAgentOptions,
  type ProcessAgentOptions,
} from '../../bench/harness/test-cluster.js';

/** A TestCluster cleaned up after each test, even a failing one. */
export function useCluster(): { readonly current: TestCluster } {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.cleanup();
    cluster = undefined;
  });
  return {
    get current(): TestCluster {
      cluster ??= new TestCluster();
      return cluster;
    },
  };
}

/**
 * Counts, from now on, the streams of `protocol` each agent opens (one entry per agent, in order):
 * e.g. the anti-entropy sessions that a digest did not make unnecessary.
 */
export function countDials(agents: Array<{ node: EdgeNode }>, protocol: string): number[] {
  const counts = agents.map(() => 0);
  agents.forEach(({ node }, i) => {
    const dial = node.dialProtocol.bind(node);
    node.dialProtocol = (peer, protocols, opts) => {
      if (protocols === protocol) counts[i]++;
      return dial(peer, protocols, opts);
    };
  });
  return counts;
}

/** The sum of an in-process agent's metric samples whose line starts with `prefix`. */
export async function metricSum(agent: Agent, prefix: string): Promise<number> {
  const text = await agent.metrics.text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(prefix)) sum += Number(line.split(' ').pop());
  return sum;
}
