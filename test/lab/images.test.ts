// Images in the lab: 8 sites of one agent each, every host link shaped to 100 Mbit/s with tc tbf;
// 256 MiB pushed at site 1 with placement `all`; every site ends with a verified copy.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  metricSum,
  pushFrom,
  randomFile,
  startSites,
  verifyAll,
  waitComplete,
  type SiteAgent,
} from '../../bench/harness/image-lab.js';
import { Lab, labAvailability } from './lab.js';

const avail = labAvailability();
if (!avail.ok) console.log(`lab tests skipped: ${avail.reason}`);
const MIB = Number(process.env.EDGESWARM_LAB_IMAGE_MIB ?? 256);

describe.skipIf(!avail.ok)('lab: image replication to 8 sites over 100 Mbit/s links', () => {
  let lab: Lab;
  let sites: SiteAgent[];
  let dir: string;

  beforeAll(async () => {
    lab = new Lab();
    dir = mkdtempSync(join(tmpdir(), 'edgeswarm-img-'));
    sites = await startSites(lab, 8);
    for (const s of sites) lab.shape(s.host, '100mbit');
  });

  afterAll(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    `${MIB} MiB pushed at site 1 reaches every site as a verified copy`,
    { timeout: 600_000 },
    async () => {
      const file = join(dir, 'disk.img');
      randomFile(file, MIB * 1024 * 1024);
      const { pushedAt, version } = await pushFrom(lab, sites[0], file, 'lab/disk:v1');
      const done = await waitComplete(sites, 'lab/disk:v1', version, 300_000);
      const last = Math.max(...done.values()) - pushedAt;
      const single = (MIB * 1024 * 1024 * 8) / 100e6;
      const originOut = await metricSum(
        sites[0].agent,
        /^edgeswarm_replication_bytes_total\{direction="out"[^}]*\} (\d+)/,
      );
      // what the other sites received in all, per site: above 1x is chunks fetched twice
      let receivedIn = 0;
      for (const s of sites.slice(1))
        receivedIn += await metricSum(
          s.agent,
          /^edgeswarm_replication_bytes_total\{direction="in"[^}]*\} (\d+)/,
        );
      console.log(
        `lab: ${MIB} MiB to 8 sites in ${(last / 1000).toFixed(1)} s (single-link bound ${single.toFixed(1)} s, ratio ${(last / 1000 / single).toFixed(2)}); origin uploaded ${(originOut / (MIB * 1024 * 1024)).toFixed(2)}x the image; each other site received ${(receivedIn / 7 / (MIB * 1024 * 1024)).toFixed(2)}x it`,
      );
      const verified = await verifyAll(sites, 'lab/disk:v1');
      expect(verified.filter((v) => !v.ok)).toEqual([]);
    },
  );
});
