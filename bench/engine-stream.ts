/**
 * Where the container→client bytes go slow: the Engine's raw hijacked exec stream read straight
 * into Node (the ceiling), the same stream through the backend's demuxer (`DockerProcess`), and
 * both with a TTY. No SSH involved; run it when changing src/backend/docker/stream-demux.ts.
 *
 *   node --import tsx bench/engine-stream.ts [--size-mb 512] [--rounds 3]
 */
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import { pino } from 'pino';
import { createDockerBackend } from '../src/backend/docker/index.js';
import { startExecHijacked } from '../src/backend/docker/engine-ops.js';
import type { BackendConnection } from '../src/backend/backend.js';
import { ensureTestImage } from '../test/helpers/docker.js';
import { table, fmt } from './lib/report.js';
import { summarize } from './lib/stats.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : fallback;
};
const SIZE = option('size-mb', 512) * 1_000_000;
const ROUNDS = option('rounds', 3);
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Node CPU time (user+system) per MB during the last run: independent of other load on the machine. */
const cpu: Record<string, number[]> = {};
/** Average bytes per 'data' event (socket read, or push to the SSH layer). */
const chunk: Record<string, number[]> = {};
let cpuStart = process.cpuUsage();
const cpuBegin = () => (cpuStart = process.cpuUsage());
const cpuEnd = (key: string) => {
  const d = process.cpuUsage(cpuStart);
  (cpu[key] ??= []).push((d.user + d.system) / 1000 / (SIZE / 1e6));
};

async function rawExec(container: Docker.Container, tty: boolean): Promise<number> {
  const exec = await container.exec({ Cmd: ['head', '-c', String(SIZE), '/dev/zero'], AttachStdout: true, AttachStderr: true, Tty: tty });
  const started = now();
  cpuBegin();
  const stream: Duplex = await startExecHijacked(exec, { hijack: true, stdin: false, Detach: false, Tty: tty });
  let bytes = 0;
  let reads = 0;
  stream.on('data', (d: Buffer) => {
    bytes += d.length;
    reads++;
  });
  await new Promise((resolve) => stream.once('end', resolve));
  stream.destroy();
  cpuEnd(`raw exec stream${tty ? ', tty' : ''}`);
  (chunk[`raw exec stream${tty ? ', tty' : ''}`] ??= []).push(bytes / Math.max(1, reads));
  // Without a TTY the frames' 8-byte headers are counted too (a fraction of a percent).
  if (bytes < SIZE) throw new Error(`raw exec: ${bytes} of ${SIZE}`);
  return SIZE / 1e6 / ((now() - started) / 1000);
}

async function viaProcess(conn: BackendConnection, tty: boolean): Promise<number> {
  const started = now();
  cpuBegin();
  const proc = await conn.startProcess({
    channelId: 0,
    kind: 'exec',
    command: `head -c ${SIZE} /dev/zero`,
    env: {},
    ...(tty ? { pty: { term: 'xterm', cols: 80, rows: 24 } } : {}),
  });
  proc.stdin.end();
  let bytes = 0;
  let pushes = 0;
  proc.stdout.on('data', (d: Buffer) => {
    bytes += d.length;
    pushes++;
  });
  proc.stderr.resume();
  await proc.exited;
  cpuEnd(tty ? 'DockerProcess, tty' : 'DockerProcess (demuxer)');
  (chunk[tty ? 'DockerProcess, tty' : 'DockerProcess (demuxer)'] ??= []).push(bytes / Math.max(1, pushes));
  if (bytes !== SIZE) throw new Error(`DockerProcess: ${bytes} of ${SIZE}`);
  return SIZE / 1e6 / ((now() - started) / 1000);
}

async function main(): Promise<void> {
  const image = await ensureTestImage();
  const logger = pino({ level: 'warn' });
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  const backend = createDockerBackend({
    host: 'unix:///var/run/docker.sock',
    gatewayId: `bench-${process.pid}`,
    container: { image, env: {}, labels: {}, extra: {} },
    hostConfig: { extra: {} },
    mode: 'connection',
    idleCommand: ['/bin/sh', '-c', 'while :; do sleep 3600; done'],
    subsystems: {},
    imagePullPolicy: 'Never',
    timeouts: { containerStart: 60_000, containerStop: 10_000, commandStart: 60_000, signal: 10_000, window: 10_000, http: 15_000 },
    logger,
  });
  const conn = await backend.openConnection({
    connectionId: `bench${process.pid}`,
    loginUsername: 'bench',
    username: 'bench',
    remoteAddress: '127.0.0.1:0',
    clientVersion: 'bench',
    metadata: {},
    environment: {},
    files: {},
  });
  try {
    const container = docker.getContainer((await docker.listContainers({ filters: { label: [`airlock.connection=bench${process.pid}`] } }))[0]!.Id);
    const samples: Record<string, number[]> = { 'raw exec stream': [], 'DockerProcess (demuxer)': [], 'raw exec stream, tty': [], 'DockerProcess, tty': [] };
    for (let r = 0; r < ROUNDS; r++) {
      samples['raw exec stream']!.push(await rawExec(container, false));
      samples['DockerProcess (demuxer)']!.push(await viaProcess(conn, false));
      samples['raw exec stream, tty']!.push(await rawExec(container, true));
      samples['DockerProcess, tty']!.push(await viaProcess(conn, true));
    }
    console.log(`\nEngine stream → Node, ${SIZE / 1e6} MB, ${ROUNDS} rounds\n`);
    console.log(
      table(
        ['path', 'median MB/s', 'p95 MB/s', 'Node CPU ms/MB', 'avg KiB per data event'],
        Object.entries(samples).map(([k, v]) => {
          const s = summarize(v);
          return [k, fmt.mbps(s.median), fmt.mbps(s.p95), summarize(cpu[k] ?? []).median.toFixed(2), (summarize(chunk[k] ?? []).median / 1024).toFixed(1)];
        }),
      ),
    );
  } finally {
    await conn.close('bench done');
    await backend.close();
  }
}

await main();
