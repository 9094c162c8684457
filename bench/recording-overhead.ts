/**
 * Session throughput with recording off and on, on the same machine in the same run, through
 * the real gateway (`airlock serve` child processes) and the real OpenSSH client.
 *
 *   node --import tsx bench/recording-overhead.ts [--mb 300] [--rounds 3]
 *
 * Workloads: container → client (stdout) with compressible (zeros) and incompressible (random)
 * bytes, and client → container (stdin). Each gateway config is measured in interleaved rounds
 * and the median is reported. Recording "on" = audit.enable with file storage, binary format
 * (the default), and with `format: both` (binary + asciicast + command log).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keyFixture, keyGateway, type KeyFixture } from '../test/helpers/fixture.js';
import { sshArgs } from '../test/helpers/ssh.js';
import { ensureTestImage } from '../test/helpers/docker.js';
import { tempDir } from '../test/helpers/tmp.js';
import type { TestGateway } from '../test/helpers/gateway.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const MB = arg('mb', 300);
const ROUNDS = arg('rounds', 3);
const BYTES = MB * 1_000_000;

interface Workload {
  readonly name: string;
  readonly command: string;
  readonly stdinFile?: string;
}

async function timeSsh(gw: TestGateway, fx: KeyFixture, w: Workload): Promise<number> {
  const args = sshArgs(gw, { user: 'alice', identity: fx.alice.path, command: w.command });
  const start = process.hrtime.bigint();
  const child = spawn('ssh', args, { stdio: [w.stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let received = 0;
  child.stdout!.on('data', (d: Buffer) => (received += d.length));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  if (w.stdinFile) createReadStream(w.stdinFile).pipe(child.stdin!);
  const [code] = (await once(child, 'close')) as [number | null];
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (code !== 0) throw new Error(`${w.name} on ${gw.port}: ssh exited ${code}: ${err}`);
  const expected = w.stdinFile ? String(BYTES).length + 1 : BYTES;
  if (received !== expected && !(w.stdinFile && received > 0)) throw new Error(`${w.name}: received ${received} bytes, expected ${expected}`);
  return BYTES / 1e6 / seconds;
}

/** Bytes the recorder dropped (queue overflow) in every recording stored under `dir` so far. */
async function droppedBytes(gw: TestGateway, dir: string | undefined, sessions: number): Promise<number> {
  if (!dir) return 0;
  // Recordings are stored after the session ends: wait until all of them are.
  await gw.waitForLog(() => gw.logs.filter((l) => l.msg === 'recording stored').length >= sessions, 900_000);
  let total = 0;
  for (const name of await readdir(dir)) {
    if (name.startsWith('.')) continue;
    const m = JSON.parse(await readFile(join(dir, name, 'manifest.json'), 'utf8')) as { dropped: { bytes: number } };
    total += m.dropped.bytes;
  }
  return total;
}

/**
 * Background work after each session (casts, command log, compression: off the session's path),
 * seconds from "connection closed" to "recording sealed", for the connections in `ids`.
 */
function finalizeSeconds(gw: TestGateway, ids: Set<string>): number[] {
  const at = (msg: string, id: string) => Date.parse(String(gw.logs.find((l) => l.msg === msg && l['connectionId'] === id)?.['time'] ?? NaN));
  return [...ids].map((id) => (at('recording sealed', id) - at('connection closed', id)) / 1000).filter((x) => Number.isFinite(x));
}

/**
 * The recorder's own cost on the gateway's event loop, measured in-process (CPU time, so it holds
 * on a busy machine): `io()` calls plus the batch that frames, chains and writes them.
 */
async function recorderCpu(format: 'binary' | 'both', chunkSize: number): Promise<{ mbPerCpuSecond: number; dropped: number }> {
  const { pino } = await import('pino');
  const { parseConfig } = await import('../src/config/index.js');
  const { createRecorder } = await import('../src/audit/index.js');
  const dir = await tempDir('airlock-bench-cpu-');
  try {
    const audit = parseConfig({ auth: { publicKey: { method: 'authorizedKeys', authorizedKeys: 'k' } }, audit: { enable: true, format, storage: 'file', file: { directory: dir.path } } }, 'bench').audit;
    const recorder = await createRecorder(audit, { logger: pino({ level: 'silent' }), drainTimeoutMs: 600_000 });
    const r = recorder.begin('cpu', '127.0.0.1:1');
    r.event(403, 0, { command: 'bench' });
    const { randomBytes } = await import('node:crypto');
    const chunks = Array.from({ length: 64 }, () => randomBytes(chunkSize));
    const total = 200_000_000;
    const cpu0 = process.cpuUsage();
    for (let sent = 0, i = 0; sent < total; sent += chunkSize, i++) {
      r.io(0, 1, chunks[i % 64] as Buffer);
      // Yield like a socket would, so batches and writes interleave with input.
      if (i % 16 === 15) await new Promise((res) => setImmediate(res));
    }
    await new Promise((res) => setImmediate(res));
    const used = process.cpuUsage(cpu0);
    const dropped = (r as unknown as { dropped: { bytes: number } }).dropped.bytes;
    await r.close();
    await recorder.close();
    return { mbPerCpuSecond: total / 1e6 / ((used.user + used.system) / 1e6), dropped };
  } finally {
    await dir.cleanup();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  await ensureTestImage();
  const fx = await keyFixture();
  const storage = await tempDir('airlock-bench-store-');
  const input = join(storage.path, 'input.bin');
  // Random stdin payload, generated once.
  const { randomBytes } = await import('node:crypto');
  await writeFile(input, randomBytes(BYTES));

  const configs: Array<{ name: string; gw: TestGateway; dir?: string; sessions: number }> = [];
  try {
    configs.push({ name: 'recording off', gw: await keyGateway(fx, { log: { level: 'info' } }), sessions: 0 });
    for (const format of ['binary', 'both'] as const) {
      const dir = join(storage.path, format);
      configs.push({
        name: `on: ${format}`,
        gw: await keyGateway(fx, { log: { level: 'info' }, audit: { enable: true, format, storage: 'file', file: { directory: dir } } }),
        dir,
        sessions: 0,
      });
    }
    const workloads: Workload[] = [
      { name: `stdout zeros ${MB} MB`, command: `head -c ${BYTES} /dev/zero` },
      { name: `stdout random ${MB} MB`, command: `head -c ${BYTES} /dev/urandom` },
      { name: `stdin random ${MB} MB`, command: 'wc -c', stdinFile: input },
    ];
    // Warm-up (image cache, first container start).
    for (const c of configs) {
      await timeSsh(c.gw, fx, { name: 'warm-up', command: `head -c ${BYTES} /dev/zero` });
      c.sessions++;
    }

    console.log(`\nAirlock recording overhead — ${MB} MB per run, median of ${ROUNDS} interleaved rounds, MB/s (higher is better)\n`);
    const header = [
      'workload',
      ...configs.map((c) => c.name),
      ...configs.slice(1).map((c) => `cost ${c.name.replace('on: ', '')}`),
      ...configs.slice(1).map((c) => `dropped ${c.name.replace('on: ', '')}`),
      ...configs.slice(1).map((c) => `finalize ${c.name.replace('on: ', '')}`),
    ];
    const rows: string[][] = [];
    const rowsOff: number[] = [];
    for (const w of workloads) {
      const samples = configs.map(() => [] as number[]);
      const droppedBefore = await Promise.all(configs.map((c) => droppedBytes(c.gw, c.dir, c.sessions)));
      const connectionsBefore = configs.map((c) => new Set(c.gw.logs.filter((l) => l.msg === 'connection closed').map((l) => String(l['connectionId']))));
      for (let r = 0; r < ROUNDS; r++) {
        for (const [i, c] of configs.entries()) {
          // Background finalization of earlier sessions would steal CPU from this measurement.
          await Promise.all(configs.map((x) => droppedBytes(x.gw, x.dir, x.sessions)));
          samples[i]?.push(await timeSsh(c.gw, fx, w));
          c.sessions++;
        }
      }
      const dropped = await Promise.all(configs.map(async (c, i) => (await droppedBytes(c.gw, c.dir, c.sessions)) - (droppedBefore[i] ?? 0)));
      const med = samples.map(median);
      const off = med[0] as number;
      rowsOff.push(off);
      const finalize = configs.map((c, i) => {
        const ids = new Set(c.gw.logs.filter((l) => l.msg === 'connection closed' && !connectionsBefore[i]?.has(String(l['connectionId']))).map((l) => String(l['connectionId'])));
        const xs = finalizeSeconds(c.gw, ids);
        return xs.length > 0 ? `${median(xs).toFixed(1)} s` : '-';
      });
      rows.push([
        w.name,
        ...med.map((m) => m.toFixed(0)),
        ...med.slice(1).map((m) => `${(((off - m) / off) * 100).toFixed(1)}%`),
        ...dropped.slice(1).map((d) => (d === 0 ? '0' : `${(d / 1e6).toFixed(1)} MB`)),
        ...finalize.slice(1),
      ]);
    }
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
    console.log(line(header));
    for (const r of rows) console.log(line(r));
    console.log('\ncost = throughput lost relative to "recording off" (target: under 20%)');
    console.log('dropped = recorded bytes lost to queue overflow (audit.queueSize) over all rounds; 0 = complete recordings');
    console.log('finalize = median background time after a session ends (casts, command log, gzip) until the recording is sealed');

    console.log('\nRecorder cost on the event loop (in-process, CPU time; the session path only: queue, CBOR framing, chain, spool write)');
    for (const format of ['binary', 'both'] as const) {
      for (const size of [32 * 1024, 1024]) {
        const { mbPerCpuSecond, dropped } = await recorderCpu(format, size);
        const atOff = median(rowsOff);
        console.log(
          `  ${format.padEnd(6)} ${String(size / 1024).padStart(2)} KiB chunks: ${mbPerCpuSecond.toFixed(0)} MB per CPU-second` +
            ` → ${((atOff / mbPerCpuSecond) * 100).toFixed(1)}% of one core at the ${atOff.toFixed(0)} MB/s measured above` +
            (dropped > 0 ? ` (dropped ${dropped} bytes)` : ''),
        );
      }
    }
  } finally {
    for (const c of configs) await c.gw.stop();
    await storage.cleanup();
    await fx.cleanup();
  }
}

await main();
