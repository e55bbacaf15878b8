// The one spelling of an address and port in messages and URLs (a leaf: the CLI loads it too).

/** "HOST:PORT", with an IPv6 host in brackets ("[::1]:7780"), as a URL authority needs it. */
export function formatHostPort(a: { host: string; port: number }): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}
