// Test helpers for real agents: useCluster() gives each test a TestCluster that is cleaned up
// after it, even when it fails.
import { afterEach } from 'vitest';
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
