/**
 * Airlock's benchmark suite: the real gateway (`airlock serve` child processes) against the
 * baseline a user would otherwise build (sshd + ForceCommand `docker run --rm -i`), both driven
 * by the real OpenSSH client in the same run. Prints a table, then the full results as JSON.
 *
 *   npm run bench [-- --quick] [-- --size-mb 256] [-- --n 20] [-- --sessions 100] [-- --json out.json]
 *                 [-- --only floors,latency,throughput,concurrency,recording,pool]
 *
 * Needs root (the baseline starts sshd and creates a throw-away user), Docker, and OpenSSH's
 * client and server. Everything started here is removed at the end, also on Ctrl-C.
 * See bench/README.md for what each figure means.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureTestImage, TEST_IMAGE } from '../test/helpers/docker.js';
import { keyFixture, keyGateway, type KeyFixture } from '../test/helpers/fixture.js';
import type { GatewayConfig, TestGateway } from '../test/helpers/gateway.js';
import { tempDir } from '../test/helpers/tmp.js';
import { startBaselineSshd, type BaselineSshd } from './lib/baseline-sshd.js';
import {
  BENCH_LABEL,
  concurrentSessions,
  connectLatency,
  dockerExecFloor,
  dockerExecThroughput,
  dockerRunFloor,
  firstPrompt,
  floorContainer,
  throughput,
  type ConcurrencyResult,
} from './lib/measure.js';
import { fmt, table } from './lib/report.js';
import { gatewayTarget, type SshTarget } from './lib/ssh-target.js';
import { summarize, type Summary } from './lib/stats.js';

const run = promisify(execFile);

// ---- options ---------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : fallback;
};
const QUICK = flag('quick');
const N = option('n', QUICK ? 5 : 20);
const PROMPT_N = option('prompt-n', QUICK ? 3 : 10);
const SIZE = option('size-mb', QUICK ? 32 : 128) * 1_000_000;
const TTY_SIZE = option('tty-size-mb', QUICK ? 16 : 48) * 1_000_000;
const ROUNDS = option('rounds', QUICK ? 1 : 3);
const SESSIONS = option('sessions', QUICK ? 20 : 100);
const POOL_SIZE = option('pool-size', 4);
const FLOOR_N = option('floor-n', QUICK ? 3 : 10);
const jsonIndex = argv.indexOf('--json');
const JSON_OUT = jsonIndex >= 0 ? argv[jsonIndex + 1] : undefined;
const SKIP_BASELINE_CONCURRENCY = flag('skip-baseline-concurrency');
const ALL_SECTIONS = ['floors', 'latency', 'throughput', 'concurrency', 'recording', 'pool'] as const;
type Section = (typeof ALL_SECTIONS)[number];
const onlyIndex = argv.indexOf('--only');
const SECTIONS = new Set<Section>(
  onlyIndex >= 0 ? ((argv[onlyIndex + 1] ?? '').split(',').filter((x): x is Section => (ALL_SECTIONS as readonly string[]).includes(x))) : ALL_SECTIONS,
);
const want = (section: Section) => SECTIONS.has(section);

// ---- results ---------------------------------------------------------------------------

interface Row {
  readonly measurement: string;
  readonly system: string;
  readonly unit: string;
  readonly summary: Summary;
  readonly samples: readonly number[];
}

const rows: Row[] = [];
const extras: Record<string, unknown> = {};
const notes: string[] = [];

function record(measurement: string, system: string, unit: string, samples: readonly number[]): Summary {
  const summary = summarize(samples);
  rows.push({ measurement, system, unit, summary, samples: samples.map((s) => Math.round(s * 10) / 10) });
  const show = unit === 'ms' ? fmt.ms : fmt.mbps;
  process.stderr.write(`  ${measurement} · ${system}: median ${show(summary.median)} ${unit}, p95 ${show(summary.p95)} ${unit} (n=${summary.n})\n`);
  return summary;
}

const median = (measurement: string, system: string) => rows.find((r) => r.measurement === measurement && r.system === system)?.summary.median;
const step = (text: string) => process.stderr.write(`\n== ${text}\n`);

// ---- cleanup ---------------------------------------------------------------------------

const cleanups: Array<() => Promise<unknown>> = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((err: unknown) => process.stderr.write(`cleanup: ${String(err)}\n`));
    // Anything an interrupted baseline session left (its `docker run --rm` may not have ended).
    const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=${BENCH_LABEL}=${process.pid}`]).catch(() => ({ stdout: '' }));
    const ids = stdout.split('\n').filter(Boolean);
    if (ids.length > 0) {
      notes.push(`removed ${ids.length} leftover baseline container(s)`);
      await run('docker', ['rm', '-f', '-v', ...ids]).catch(() => undefined);
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: cleaning up…\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

type GwTarget = ReturnType<typeof gatewayTarget> & { stop(): Promise<void> };

async function startGw(fx: KeyFixture, name: string, overrides: GatewayConfig = {}): Promise<GwTarget> {
  const gw = await keyGateway(fx, { log: { level: 'info' }, ...overrides });
  const stop = async () => {
    const i = cleanups.indexOf(stop);
    if (i >= 0) cleanups.splice(i, 1);
    await gw.stop();
    const left = await gw.containers();
    if (left.length > 0) notes.push(`gateway "${name}" left ${left.length} container(s) behind`);
  };
  cleanups.push(stop);
  return { ...gatewayTarget(name, gw, fx), stop };
}

/** Between two cold samples: the previous connection's container is gone (no engine contention). */
const idle = (t: { gw: TestGateway }) => () => t.gw.waitForIdle(60_000);

// ---- sections --------------------------------------------------------------------------

async function floors(image: string): Promise<void> {
  step('floors (the engine through its own CLI)');
  record('docker run --rm IMAGE true', 'docker CLI', 'ms', await dockerRunFloor(image, FLOOR_N));
  const c = await floorContainer(image);
  cleanups.push(() => c.remove());
  record('docker exec C true', 'docker CLI', 'ms', await dockerExecFloor(c.id, FLOOR_N));
  const out: number[] = [];
  const tty: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    out.push(await dockerExecThroughput(c.id, SIZE, false));
    tty.push(await dockerExecThroughput(c.id, TTY_SIZE, true));
  }
  record(`container→client ${SIZE / 1e6} MB`, 'docker exec', 'MB/s', out);
  record(`container→client tty ${TTY_SIZE / 1e6} MB`, 'docker exec -t', 'MB/s', tty);
}

async function latency(targets: ReadonlyArray<{ t: SshTarget; between?: () => Promise<void> }>, label: string): Promise<void> {
  step(`connect latency: ssh ${label} true (N=${N})`);
  for (const { t, between } of targets) record(`connect (ssh true)`, t.name, 'ms', await connectLatency(t, N, between));
  step(`time to first prompt: ssh -tt (N=${PROMPT_N})`);
  for (const { t, between } of targets) record('first prompt (ssh -tt)', t.name, 'ms', await firstPrompt(t, PROMPT_N, between));
}

async function throughputs(targets: readonly SshTarget[], withTty: boolean): Promise<void> {
  step(`throughput: ${SIZE / 1e6} MB each way${withTty ? `, ${TTY_SIZE / 1e6} MB through a pty` : ''}, ${ROUNDS} interleaved rounds`);
  const out = targets.map(() => [] as number[]);
  const inn = targets.map(() => [] as number[]);
  const tty = targets.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, t] of targets.entries()) {
      out[i]!.push(await throughput(t, 'out', SIZE));
      inn[i]!.push(await throughput(t, 'in', SIZE));
      if (withTty) tty[i]!.push(await throughput(t, 'out', TTY_SIZE, { tty: true }));
    }
  }
  for (const [i, t] of targets.entries()) {
    record(`container→client ${SIZE / 1e6} MB`, t.name, 'MB/s', out[i]!);
    record(`client→container ${SIZE / 1e6} MB`, t.name, 'MB/s', inn[i]!);
    if (withTty) record(`container→client tty ${TTY_SIZE / 1e6} MB`, t.name, 'MB/s', tty[i]!);
  }
}

async function concurrency(t: SshTarget, rssPid: number | undefined): Promise<ConcurrencyResult> {
  step(`${SESSIONS} concurrent sessions: ${t.name}`);
  const result = await concurrentSessions(t, SESSIONS, rssPid !== undefined ? { rssPid } : {});
  process.stderr.write(
    `  ${result.succeeded}/${result.sessions} ok in ${fmt.ms(result.wallMs)} ms (all up after ${fmt.ms(result.allReadyMs)} ms)` +
      (result.rssPeakBytes ? `; RSS ${fmt.mb(result.rssBeforeBytes)} → peak ${fmt.mb(result.rssPeakBytes)} MiB, ${fmt.mb(result.perSessionBytes)} MiB/session` : '') +
      '\n',
  );
  for (const f of result.failures) process.stderr.write(`    failure: ${f}\n`);
  return result;
}

// ---- main ------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  const image = await ensureTestImage();
  const fx = await keyFixture();
  cleanups.push(() => fx.cleanup());
  const storage = await tempDir('airlock-bench-rec-');
  cleanups.push(() => storage.cleanup());

  const machine = {
    cpus: (await import('node:os')).cpus().length,
    node: process.version,
    docker: (await run('docker', ['version', '--format', '{{.Server.Version}} (API {{.Server.APIVersion}})'])).stdout.trim(),
    openssh: (await run('ssh', ['-V'])).stderr.trim(),
  };
  process.stderr.write(`Airlock benchmark — ${machine.cpus} CPUs, Node ${machine.node}, Docker ${machine.docker}, ${machine.openssh}\n`);
  process.stderr.write(`image ${image}; N=${N}, prompt N=${PROMPT_N}, ${SIZE / 1e6} MB transfers, ${ROUNDS} rounds, ${SESSIONS} concurrent sessions\n`);

  if (want('floors')) await floors(image);

  const baseline: BaselineSshd = await startBaselineSshd(image, fx.alice);
  cleanups.push(() => baseline.stop());
  const cold = await startGw(fx, 'airlock');

  if (want('latency')) await latency([{ t: baseline }, { t: cold, between: idle(cold) }], 'TARGET');
  if (want('throughput')) await throughputs([baseline, cold], true);

  let gwConcurrency: ConcurrencyResult | undefined;
  let baseConcurrency: ConcurrencyResult | undefined;
  if (want('concurrency')) {
    gwConcurrency = await concurrency(cold, cold.gw.child.pid);
    baseConcurrency = SKIP_BASELINE_CONCURRENCY ? undefined : await concurrency(baseline, undefined);
    extras.concurrency = { airlock: gwConcurrency, ...(baseConcurrency ? { baseline: baseConcurrency } : {}) };
  }
  await cold.gw.waitForIdle(120_000);
  await cold.stop();

  // Recording on (audit.enable, file storage, binary format) vs off (the runs above).
  if (want('recording')) {
    step('recording on (audit: binary format, file storage)');
    const rec = await startGw(fx, 'airlock +recording', {
      audit: { enable: true, format: 'binary', storage: 'file', file: { directory: join(storage.path, 'recordings') } },
    });
    record('connect (ssh true)', rec.name, 'ms', await connectLatency(rec, Math.min(N, 10), idle(rec)));
    await throughputs([rec], false);
    await rec.gw.waitForIdle(120_000);
    await rec.stop();
  }

  // Warm pool: docker.pool.size containers waiting; each sample starts with a full pool (the
  // refill runs in the background between connections, as it would between real users).
  if (want('pool')) await warmPool(fx);

  await cleanup();
  report(machine, gwConcurrency, baseConcurrency, (Date.now() - started) / 1000);
}

async function warmPool(fx: KeyFixture): Promise<void> {
  step(`warm pool (docker.pool.size ${POOL_SIZE})`);
  const variants: Array<{ name: string; overrides: GatewayConfig; prompt: boolean }> = [
    { name: 'airlock +pool', overrides: { docker: { pool: { size: POOL_SIZE } } }, prompt: true },
    // What attaching the network at claim costs: the same pool with networkMode none.
    { name: 'airlock +pool, no network', overrides: { docker: { pool: { size: POOL_SIZE }, execution: { host: { networkMode: 'none' } } } }, prompt: false },
  ];
  for (const v of variants) {
    const pool = await startGw(fx, v.name, v.overrides);
    const poolFull = async () => {
      await pool.gw.waitForIdle(60_000);
      const count = (msg: string) => pool.gw.logs.filter((l) => l.msg === msg).length;
      await pool.gw.waitForLog(() => count('pool container ready') - count('pool container claimed') >= POOL_SIZE, 60_000);
    };
    record('connect (ssh true)', pool.name, 'ms', await connectLatency(pool, N, poolFull));
    if (v.prompt) record('first prompt (ssh -tt)', pool.name, 'ms', await firstPrompt(pool, PROMPT_N, poolFull));
    await pool.gw.waitForIdle(120_000);
    await pool.stop();
  }
}

function report(machine: Record<string, unknown>, gwC: ConcurrencyResult | undefined, baseC: ConcurrencyResult | undefined, seconds: number): void {
  const out: string[] = [];
  out.push(`\nAirlock benchmark (${machine.cpus} CPUs, ${machine.docker}, ${machine.openssh}); ${seconds.toFixed(0)} s\n`);
  out.push(
    table(
      ['measurement', 'system', 'median', 'p95', 'n', 'unit'],
      rows.map((r) => {
        const show = r.unit === 'ms' ? fmt.ms : fmt.mbps;
        return [r.measurement, r.system, show(r.summary.median), show(r.summary.p95), String(r.summary.n), r.unit];
      }),
    ),
  );
  out.push('');
  const cRows = [...(gwC ? [['airlock', gwC] as const] : []), ...(baseC ? [['baseline', baseC] as const] : [])].map(([name, c]) => [
    name,
    `${c.succeeded}/${c.sessions}`,
    fmt.ms(c.wallMs),
    fmt.ms(c.allReadyMs),
    fmt.mb(c.rssBeforeBytes),
    fmt.mb(c.rssPeakBytes),
    fmt.mb(c.perSessionBytes),
  ]);
  if (cRows.length > 0) {
    out.push(table(['concurrent sessions', 'ok', 'wall ms', 'all up ms', 'RSS idle MiB', 'RSS peak MiB', 'MiB/session'], cRows));
    out.push('');
  }

  const base = (m: string) => median(m, 'baseline');
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? a / b : undefined);
  const outM = `container→client ${SIZE / 1e6} MB`;
  const inM = `client→container ${SIZE / 1e6} MB`;
  const ttyM = `container→client tty ${TTY_SIZE / 1e6} MB`;
  const coldRatio = ratio(median('connect (ssh true)', 'airlock'), base('connect (ssh true)'));
  const poolMs = median('connect (ssh true)', 'airlock +pool');
  const outRatio = ratio(median(outM, 'airlock'), base(outM));
  const inRatio = ratio(median(inM, 'airlock'), base(inM));
  const ttyRatio = ratio(median(ttyM, 'airlock'), median(ttyM, 'docker exec -t'));
  const rssLimit = 150 * 1024 * 1024 + 0.5 * 1024 * 1024 * (gwC?.sessions ?? SESSIONS);
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED');
  const targets = [
    ['cold connect ≤ 0.9× baseline', fmt.ratio(coldRatio), verdict(coldRatio === undefined ? undefined : coldRatio <= 0.9)],
    ['warm pool connect < 150 ms median', `${fmt.ms(poolMs)} ms`, verdict(poolMs === undefined ? undefined : poolMs < 150)],
    ['container→client ≥ 2× baseline', fmt.ratio(outRatio), verdict(outRatio === undefined ? undefined : outRatio >= 2)],
    ['client→container ≥ baseline', fmt.ratio(inRatio), verdict(inRatio === undefined ? undefined : inRatio >= 1)],
    ['tty ≥ docker exec -t', fmt.ratio(ttyRatio), verdict(ttyRatio === undefined ? undefined : ttyRatio >= 1)],
    [`${SESSIONS} concurrent sessions all succeed`, gwC ? `${gwC.succeeded}/${gwC.sessions}` : '–', verdict(gwC ? gwC.succeeded === gwC.sessions : undefined)],
    [
      `gateway RSS ≤ 150 MB + 0.5 MB/session (${fmt.mb(rssLimit)} MiB)`,
      `${fmt.mb(gwC?.rssPeakBytes)} MiB`,
      verdict(gwC?.rssPeakBytes === undefined ? undefined : gwC.rssPeakBytes <= rssLimit),
    ],
  ];
  out.push(table(['target', 'measured', 'result'], targets));
  if (notes.length > 0) out.push('', ...notes.map((n) => `note: ${n}`));
  process.stdout.write(out.join('\n') + '\n');

  const json = { machine, options: { n: N, promptN: PROMPT_N, sizeBytes: SIZE, ttySizeBytes: TTY_SIZE, rounds: ROUNDS, sessions: SESSIONS, poolSize: POOL_SIZE }, rows, extras, targets, notes, seconds };
  process.stdout.write('\n' + JSON.stringify(json) + '\n');
  if (JSON_OUT) void writeFile(JSON_OUT, JSON.stringify(json, null, 2));
}

try {
  await main();
} catch (err) {
  process.stderr.write(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
