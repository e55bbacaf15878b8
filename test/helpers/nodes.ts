// Bare libp2p nodes (as agents create them) for tests of the network layer.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { generateClusterKey, parseClusterKey } from '../../agent/identity.js';
import { createNode, type EdgeNode } from '../../agent/node.js';

export async function startNodes(n: number, key = generateClusterKey()): Promise<EdgeNode[]> {
  const psk = parseClusterKey(key, 'test');
  const nodes: EdgeNode[] = [];
  for (let i = 0; i < n; i++) {
    const node = await createNode({
      privateKey: await generateKeyPair('Ed25519'),
      psk,
      listen: ['/ip4/127.0.0.1/tcp/0'],
    });
    await node.start();
    nodes.push(node);
  }
  // make every node know every other's address
  for (const a of nodes)
    for (const b of nodes)
      if (a !== b) await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() });
  return nodes;
}

export async function stopNodes(nodes: EdgeNode[]): Promise<void> {
  await Promise.allSettled(nodes.map((n) => n.stop()));
}
