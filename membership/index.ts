// membership/: who is alive and where (SWIM + Lifeguard, Vivaldi), the service catalog, and the
// network plumbing every edgeswarm protocol shares.
export * from './errors.js';
export * from './swim/index.js';
export * from './coordinates/index.js';
export {
  Membership,
  monotonicNow,
  SWIM_PROTOCOL,
  type MemberInfo,
  type MembershipComponents,
  type MembershipNode,
  type MembershipOptions,
} from './runtime/membership.js';
export {
  CatalogService,
  type CatalogChange,
  type CatalogMembership,
  type ChangeSource,
  type LocalService,
} from './catalog/service.js';
export { parseDuration } from './duration.js';
export { Backoff } from './net/backoff.js';
export { LogThrottle } from './net/log-throttle.js';
export type { ServiceLogger, ServiceNode, StreamHandling } from './net/components.js';
export { FramedStream } from './net/framed-stream.js';
export { DatagramChannel } from './net/datagram.js';
export { DigestExchange, type DigestExchangeOptions } from './net/digest.js';
export {
  applyForwardingPolicy,
  Broadcast,
  DIRECT_TOPIC_SUFFIX,
  type BroadcastComponents,
  type BroadcastMessage,
} from './net/broadcast.js';
export {
  frame,
  FrameDecoder,
  FrameTooLargeError,
  readFrames,
  sendBytes,
  StreamClosedError,
  waitForDrain,
  writeFrame,
} from './net/framing.js';
