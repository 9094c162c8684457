/**
 * SFTP throughput and per-request latency through the gateway, with the real `sftp` client:
 * the gateway's own SFTP server (busybox image, no sftp-server; connection and session mode)
 * against OpenSSH's sftp-server inside the container (the Debian demo image).
 *
 *   node --import tsx bench/sftp.ts [--size-mb 64] [--rounds 3] [--ops 20]
 *
 * Each round goes through one SSH connection (ControlMaster), so upload and download reach the
 * same container: `put` then `get` of a random file (sha256 checked), and a batch of `--ops`
 * `ls` requests for the per-request cost. In session mode every sftp run has a container of its
 * own, so the download is timed as (put + get in one run) − (put alone) + (the start cost). Every sftp run has a fixed start cost (a channel,
 * SFTP INIT, REALPATH; in session mode a container), measured with a `pwd`-only batch and shown
 * apart; the MiB/s include it (so they are a floor). Everything started here is removed at the end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDemoImage, ensureTestImage, DEMO_IMAGE, TEST_IMAGE } from '../test/helpers/docker.js';
import { keyFixture, keyGateway, type KeyFixture } from '../test/helpers/fixture.js';
import type { GatewayConfig } from '../test/helpers/gateway.js';
import { sftpBatch, startSshMaster } from '../test/helpers/ssh.js';
import { tempDir } from '../test/helpers/tmp.js';
import { fmt, table } from './lib/report.js';
import { summarize } from './lib/stats.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : fallback;
};
const SIZE_MB = option('size-mb', 64);
const ROUNDS = option('rounds', 3);
const OPS = option('ops', 50);
const MiB = 1024 * 1024;
const now = () => performance.now();

interface Setup {
  readonly name: string;
  readonly config: GatewayConfig;
  /** Where the file goes in the container. */
  readonly remote: string;
  /** Session mode: every sftp run gets a fresh container, so `get` must follow `put` in one run. */
  readonly perChannel?: boolean;
}

const SETUPS: Setup[] = [
  { name: 'gateway SFTP, busybox, connection', config: { docker: { execution: { container: { image: TEST_IMAGE } } } }, remote: '/home/airlock/bench.bin' },
  {
    name: 'gateway SFTP, busybox, session',
    config: { docker: { execution: { container: { image: TEST_IMAGE }, mode: 'session' } } },
    remote: '/home/airlock/bench.bin',
    perChannel: true,
  },
  { name: 'sftp-server in container, Debian', config: { docker: { execution: { container: { image: DEMO_IMAGE } } } }, remote: '/home/dev/bench.bin' },
];

async function randomFile(path: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  for (let left = bytes; left > 0; left -= MiB) {
    const chunk = randomBytes(Math.min(MiB, left));
    hash.update(chunk);
    await fh.write(chunk);
  }
  await fh.close();
  return hash.digest('hex');
}

async function main(): Promise<void> {
  await ensureTestImage();
  await ensureDemoImage();
  const fx: KeyFixture = await keyFixture();
  const scratch = await tempDir('airlock-bench-sftp-');
  const local = join(scratch.path, 'bench.bin');
  const back = join(scratch.path, 'bench.back');
  const digest = await randomFile(local, SIZE_MB * MiB);
  const rows: string[][] = [];
  const json: Record<string, unknown> = {};
  try {
    for (const setup of SETUPS) {
      process.stderr.write(`${setup.name} ...\n`);
      const gw = await keyGateway(fx, setup.config);
      const who = { user: 'alice', identity: fx.alice.path };
      const up: number[] = [];
      const down: number[] = [];
      const start: number[] = [];
      const perOp: number[] = [];
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const master = await startSshMaster(gw, who);
          try {
            const through = { ...who, args: master.muxArgs, timeoutMs: 600_000 };
            const timed = async (lines: string[]) => {
              const t0 = now();
              const r = await sftpBatch(gw, through, lines);
              if (r.code !== 0) throw new Error(`sftp failed (${r.code}): ${r.stderr}`);
              return now() - t0;
            };
            const base = await timed(['pwd']);
            start.push(base);
            const put = `put ${local} ${setup.remote}`;
            const get = `get ${setup.remote} ${back}`;
            const upMs = await timed([put]);
            up.push(upMs);
            down.push(setup.perChannel ? (await timed([put, get])) - upMs + base : await timed([get]));
            const got = createHash('sha256').update(await readFile(back)).digest('hex');
            if (got !== digest) throw new Error('the downloaded file differs');
            perOp.push((await timed(Array.from({ length: OPS }, () => 'ls -l /etc'))) - base);
          } finally {
            await master.stop();
          }
        }
      } finally {
        await gw.stop();
      }
      const mbps = (ms: number[]) => summarize(ms.map((m) => SIZE_MB / (m / 1000)));
      const upS = mbps(up);
      const downS = mbps(down);
      const startS = summarize(start);
      const opS = summarize(perOp.map((m) => m / OPS));
      json[setup.name] = { upMiBps: upS, downMiBps: downS, sftpStartMs: startS, lsMs: opS };
      rows.push([setup.name, fmt.mbps(upS.median), fmt.mbps(downS.median), fmt.ms(startS.median), fmt.ms(opS.median)]);
    }
  } finally {
    await fx.cleanup();
    await scratch.cleanup();
  }
  console.log(`SFTP through the gateway: ${SIZE_MB} MiB, ${ROUNDS} round(s), medians`);
  console.log(table(['setup', 'put MiB/s', 'get MiB/s', 'sftp start ms', 'ms per ls -l'], rows));
  console.log(JSON.stringify(json));
}

await main();
