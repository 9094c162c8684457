/**
 * docker.execution.container and docker.execution.host settings reach the container: the real
 * OpenSSH client runs a program in it while the test reads `docker inspect` of the live
 * container, and the program itself sees the working directory, host name, environment,
 * network and file system the config asked for. Also: a configured shellCommand is what a
 * shell session (`ssh host` without a command) runs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { keyGatewaySuite } from '../helpers/fixture.js';
import { inspectContainer } from '../helpers/docker.js';
import { spawnSsh, ssh } from '../helpers/ssh.js';

interface Inspected {
  Config: { WorkingDir: string; Hostname: string; Env: string[]; Labels: Record<string, string> };
  HostConfig: {
    NetworkMode: string;
    Memory: number;
    NanoCpus: number;
    PidsLimit: number;
    CapDrop: string[];
    SecurityOpt: string[];
    Tmpfs: Record<string, string>;
    ReadonlyRootfs: boolean;
  };
}

describe('container and host settings reach the container', () => {
  const suite = keyGatewaySuite({
    docker: {
      execution: {
        container: {
          // Absent from the image: the Engine creates it (even on a read-only root). Not a tmpfs
          // mount point: Engine 20.10 then resets the tmpfs mode to 0755 (root only).
          workingDir: '/srv/project',
          env: { BUILD_KIND: 'nightly', GREETING: 'hello world' },
          labels: { team: 'platform', 'cost-center': 'ci-42' },
          hostname: 'airlock-box',
        },
        host: {
          networkMode: 'none',
          memory: '96m',
          cpus: 0.5,
          pidsLimit: 64,
          capDrop: ['ALL'],
          securityOpt: ['seccomp=unconfined'],
          tmpfs: { '/scratch': 'rw,size=16m,mode=1777', '/tmp': 'rw,size=16m,mode=1777' },
          readonlyRootfs: true,
        },
      },
    },
  });

  it('docker inspect of the live container and the program inside both show every setting', async () => {
    // The program reports what it sees, then holds the container open (cat) until stdin ends,
    // so the test inspects the container while the session is live.
    const child = await spawnSsh(suite.gw, {
      user: 'alice',
      identity: suite.fx.alice.path,
      command: [
        'echo "pwd=$(pwd)"',
        'echo "hostname=$(hostname)"',
        'echo "BUILD_KIND=$BUILD_KIND"',
        'echo "GREETING=$GREETING"',
        // Only the loopback device exists with NetworkMode none (header lines are 2).
        'echo "netdevs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort | tr "\\n" ,)"',
        'touch /home/airlock/probe 2>/dev/null && echo "rootfs=writable" || echo "rootfs=readonly"',
        'touch /scratch/probe && echo "scratch=writable"',
        'grep "^Seccomp:" /proc/self/status | tr -d "\\t "',
        'echo READY',
        'cat',
      ].join('; '),
    });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const closed = once(child, 'close');
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/^READY$/m.test(out)) resolve();
      });
      void closed.then(() => reject(new Error(`ssh ended before READY; stdout:\n${out}\nstderr:\n${err}`)));
    });

    const ids = await suite.gw.containers();
    assert.equal(ids.length, 1, 'one live container for the connection');
    const info = (await inspectContainer(ids[0]!)) as unknown as Inspected;
    assert.equal(info.Config.WorkingDir, '/srv/project');
    assert.equal(info.Config.Hostname, 'airlock-box');
    assert.ok(info.Config.Env.includes('BUILD_KIND=nightly'), info.Config.Env.join(' '));
    assert.ok(info.Config.Env.includes('GREETING=hello world'), info.Config.Env.join(' '));
    assert.equal(info.Config.Labels['team'], 'platform');
    assert.equal(info.Config.Labels['cost-center'], 'ci-42');
    assert.equal(info.Config.Labels['airlock.gateway'], suite.gw.gatewayId, 'configured labels come on top of the gateway labels');
    assert.equal(info.HostConfig.NetworkMode, 'none');
    assert.equal(info.HostConfig.Memory, 96 * 1024 * 1024);
    assert.equal(info.HostConfig.NanoCpus, 500_000_000);
    assert.equal(info.HostConfig.PidsLimit, 64);
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.deepEqual(info.HostConfig.SecurityOpt, ['no-new-privileges', 'seccomp=unconfined']);
    assert.deepEqual(info.HostConfig.Tmpfs, { '/scratch': 'rw,size=16m,mode=1777', '/tmp': 'rw,size=16m,mode=1777' });
    assert.equal(info.HostConfig.ReadonlyRootfs, true);

    child.stdin!.end();
    const [code] = (await closed) as [number | null];
    assert.equal(code, 0, err);
    const seen = Object.fromEntries(
      out
        .trim()
        .split('\n')
        .filter((l) => l.includes('=') || l.includes(':'))
        .map((l) => l.split(/[=:](.*)/s).slice(0, 2) as [string, string]),
    );
    assert.deepEqual(seen, {
      pwd: '/srv/project',
      hostname: 'airlock-box',
      BUILD_KIND: 'nightly',
      GREETING: 'hello world',
      netdevs: 'lo,',
      rootfs: 'readonly',
      scratch: 'writable',
      Seccomp: '0',
    });
  });
});

describe('configured shellCommand', () => {
  const suite = keyGatewaySuite({ docker: { execution: { shellCommand: ['/bin/sh', '-c', 'echo custom-shell; exec sh'] } } });

  it('is what a shell session (ssh without a command) runs', async () => {
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, input: 'echo "from the shell: $((6 * 7))"\nexit 3\n' });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout.toString(), 'custom-shell\nfrom the shell: 42\n');
  });

  it('does not wrap exec requests (the command runs as given)', async () => {
    const r = await ssh(suite.gw, { user: 'alice', identity: suite.fx.alice.path, command: 'echo plain-exec' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'plain-exec\n');
  });
});
