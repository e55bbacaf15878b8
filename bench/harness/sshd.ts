// A throwaway sshd on loopback for the rsync-over-ssh baseline: own host key, own client key,
// listening on 127.0.0.1 only, removed by stop().
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class LoopbackSshd {
  readonly dir = mkdtempSync(join(tmpdir(), 'edgeswarm-sshd-'));
  readonly port = 22000 + Math.floor(Math.random() * 2000);
  #child: ChildProcess | undefined;

  static available(): string | undefined {
    for (const bin of ['/usr/sbin/sshd', 'ssh', 'rsync', 'ssh-keygen']) {
      const ok = bin.startsWith('/')
        ? existsSync(bin)
        : spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
      if (!ok) return `${bin} not installed (apt-get install openssh-server openssh-client rsync)`;
    }
    return undefined;
  }

  get key(): string {
    return join(this.dir, 'client');
  }

  /** The -e argument for rsync. */
  get rsh(): string {
    return `ssh -p ${this.port} -i ${this.key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`;
  }

  async start(): Promise<void> {
    mkdirSync('/run/sshd', { recursive: true });
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(this.dir, 'host')]);
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', this.key]);
    spawnSync('cp', [`${this.key}.pub`, join(this.dir, 'authorized_keys')]);
    const cfg = join(this.dir, 'sshd_config');
    writeFileSync(
      cfg,
      [
        `Port ${this.port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(this.dir, 'host')}`,
        `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
        `PidFile ${join(this.dir, 'pid')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'PermitRootLogin prohibit-password',
        '',
      ].join('\n'),
    );
    this.#child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], { stdio: 'ignore' });
    for (let i = 0; i < 50; i++) {
      const r = spawnSync('ssh', [...this.rsh.split(' ').slice(1), 'root@127.0.0.1', 'true']);
      if (r.status === 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error('sshd did not come up');
  }

  stop(): void {
    this.#child?.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
