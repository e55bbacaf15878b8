// loadConfig (agent/config/load.ts): list keys given as one string, in the file as in the
// environment, and the file < environment < flag precedence with the source of each key.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../agent/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'edgeswarm-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const PEER = '/ip4/10.0.0.2/tcp/7946/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo';

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('loadConfig', () => {
  it('takes one string for listen, join and tags in the file, comma-separated as in the environment', () => {
    // `join:` with one address was "expected array, received string" while the environment
    // variable of the same key took a plain (comma-separated) string
    const configFile = file(
      'one.yaml',
      `listen: /ip4/127.0.0.1/tcp/7000, /ip4/127.0.0.1/tcp/7001\njoin: ${PEER}\ntags: gpu=1\n`,
    );
    const { config, sources } = loadConfig({ configFile, env: {} });
    expect(config.listen).toEqual(['/ip4/127.0.0.1/tcp/7000', '/ip4/127.0.0.1/tcp/7001']);
    expect(config.join).toEqual([PEER]);
    expect(config.tags).toEqual({ gpu: '1' });
    expect(sources.join).toBe(`file ${configFile}`);
    const fromEnv = loadConfig({ env: { EDGESWARM_JOIN: `${PEER}, ${PEER}` } });
    expect(fromEnv.config.join).toEqual([PEER, PEER]);
    expect(fromEnv.sources.join).toBe('EDGESWARM_JOIN');
  });

  it('lets the environment override the file and a flag override both', () => {
    const configFile = file('site.yaml', 'site: from-file\nname: n1\n');
    const env = { EDGESWARM_SITE: 'from-env' };
    expect(loadConfig({ configFile, env }).config.site).toBe('from-env');
    const both = loadConfig({ configFile, env, flags: { site: 'from-flag' } });
    expect(both.config.site).toBe('from-flag');
    expect(both.sources).toMatchObject({ site: '--site', name: `file ${configFile}` });
  });

  it('still names a list key of the wrong type', () => {
    const configFile = file('bad.yaml', 'join: 7\n');
    expect(() => loadConfig({ configFile, env: {} })).toThrow(/^join: .*expected array/);
  });
});

describe('config errors', () => {
  it('gives a YAML error its place and problem on one line, without the dangling code frame', () => {
    const configFile = file('broken.yaml', 'name: a\nsite: [x\n');
    expect(() => loadConfig({ configFile, env: {} })).toThrow(
      new RegExp(
        `^config: ${configFile} is not valid YAML at line 3, column 1: Flow sequence in block collection must be sufficiently indented and end with a \\]$`,
      ),
    );
  });

  it("names a bad map key by the key's own rule, not zod's 'Invalid key in record'", () => {
    const configFile = file(
      'meta.yaml',
      'services:\n  - name: web\n    port: 80\n    meta: {é: x}\n',
    );
    expect(() => loadConfig({ configFile, env: {} })).toThrow(
      /^services\[0\]\.meta\.é: meta keys are 1-63 of A-Z a-z 0-9 _ \. - \(from file /,
    );
  });

  it('says where a rule across two membership settings came from', () => {
    // it named the key and the rule, and no source, unlike every other config error
    const configFile = file('probe.yaml', 'membership:\n  probeTimeout: 2s\n');
    expect(() => loadConfig({ configFile, env: {} })).toThrow(
      `membership.probeTimeout: must be shorter than probeInterval (from file ${configFile})`,
    );
  });
});
