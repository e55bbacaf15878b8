// Ports that fetch refuses to connect to (the "bad ports" of the Fetch standard, as Node's fetch
// has them): a request to one fails with "bad port" before any connection is tried. The edgeswarm
// CLI talks to the API with fetch, as browsers would, so the API must not listen on one.

export const FETCH_BLOCKED_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102,
  103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465,
  512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993,
  995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668,
  6669, 6679, 6697, 10080,
]);

/** Why an API on `port` could not be reached by fetch, or undefined when it can be. */
export function fetchBlockedReason(port: number): string | undefined {
  return FETCH_BLOCKED_PORTS.has(port)
    ? `port ${port} is one that fetch (the edgeswarm CLI, browsers) refuses to connect to; choose another`
    : undefined;
}
