/**
 * The measurements, each driving the real OpenSSH client (or the docker CLI for the floors) and
 * timing it from the outside with a monotonic clock.
 */
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import type { SshTarget } from './ssh-target.js';
import { rssBytes, sampleRss } from './rss.js';

const run = promisify(execFile);

const now = () => Number(process.hrtime.bigint()) / 1e6;

export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Runs a `/bin/sh -c` pipeline; resolves with its wall time, stdout and exit code. */
async function timedShell(script: string, timeoutMs: number): Promise<{ ms: number; stdout: string; stderr: string; code: number | null }> {
  const started = now();
  const child = spawn('/bin/sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { ms: now() - started, stdout, stderr, code };
}

/** `ssh target true`: the time a user waits for a throw-away container to run one command. */
export async function connectLatency(target: SshTarget, n: number, between?: () => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    await between?.();
    const args = target.args({ command: 'true' }).map(shellQuote).join(' ');
    const r = await timedShell(`exec ssh ${args} </dev/null`, 60_000);
    if (r.code !== 0) throw new Error(`${target.name}: ssh true exited ${r.code}: ${r.stderr.trim()}`);
    samples.push(r.ms);
  }
  return samples;
}

/** `ssh -tt target`: time until the shell's prompt ("$ " or "# ") arrives, then `exit`. */
export async function firstPrompt(target: SshTarget, n: number, between?: () => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    await between?.();
    const started = now();
    const child = spawn('ssh', target.args({ tty: true }), { stdio: ['pipe', 'pipe', 'pipe'] });
    let seen = '';
    let at: number | undefined;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined);
    child.stdout.on('data', (d: Buffer) => {
      if (at !== undefined) return;
      seen = (seen + d.toString('latin1')).slice(-256);
      // busybox ash follows its prompt with a cursor-position query (ESC [6n).
      if (/[$#] (?:\x1b\[[0-9;?]*[A-Za-z])*$/.test(seen)) {
        at = now() - started;
        child.stdin.write('exit\n');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await once(child, 'close');
    clearTimeout(timer);
    if (at === undefined) throw new Error(`${target.name}: no prompt seen (output ${JSON.stringify(seen)}; ${stderr.trim()})`);
    samples.push(at);
  }
  return samples;
}

export type Direction = 'out' | 'in';

/**
 * Throughput in MB/s (10^6 bytes), timed from the first byte to the end of the session, so the
 * login is not part of it (it is measured on its own above).
 * - `out` = container→client: `head -c N /dev/zero`, counted here from the first byte on; with
 *   `tty` through a pty (`ssh -tt`), the client's stdin an open, silent pipe as at a terminal.
 * - `in` = client→container: `echo ready; cat > /dev/null`; N bytes are written once "ready"
 *   arrives (honouring the pipe's backpressure), the clock stops when the session ends.
 */
export async function throughput(target: SshTarget, direction: Direction, bytes: number, opts: { tty?: boolean } = {}): Promise<number> {
  const command = direction === 'out' ? `head -c ${bytes} /dev/zero` : 'echo ready; cat > /dev/null';
  const child = spawn('ssh', target.args({ command, ...(opts.tty ? { tty: true } : {}) }), { stdio: ['pipe', 'pipe', 'pipe'] });
  let started: number | undefined;
  let got = 0;
  let stderr = '';
  child.stdin.on('error', () => undefined);
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  if (direction === 'out') {
    if (!opts.tty) child.stdin.end();
    child.stdout.on('data', (d: Buffer) => {
      started ??= now();
      got += d.length;
    });
  } else {
    let seen = '';
    const onReady = (d: Buffer) => {
      seen += d.toString();
      if (!seen.includes('ready\n')) return;
      child.stdout.off('data', onReady);
      started = now();
      void feed(child.stdin, bytes).then((n) => (got = n));
    };
    child.stdout.on('data', onReady);
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  const end = now();
  if (code !== 0 || got !== bytes || started === undefined) {
    throw new Error(`${target.name} ${direction}${opts.tty ? ' tty' : ''}: moved ${got} of ${bytes} bytes (exit ${code}): ${stderr.trim()}`);
  }
  return bytes / 1e6 / ((end - started) / 1000);
}

/** Writes `bytes` zero bytes to `stdin` with its backpressure, then ends it; resolves with the count. */
async function feed(stdin: NodeJS.WritableStream, bytes: number): Promise<number> {
  const block = Buffer.alloc(1024 * 1024);
  let sent = 0;
  while (sent < bytes) {
    const n = Math.min(block.length, bytes - sent);
    sent += n;
    if (!stdin.write(n === block.length ? block : block.subarray(0, n))) await once(stdin, 'drain');
  }
  stdin.end();
  return sent;
}

export interface ConcurrencyResult {
  readonly sessions: number;
  readonly succeeded: number;
  readonly wallMs: number;
  /** Time until every session had printed "ready" (all containers up at once). */
  readonly allReadyMs: number | undefined;
  readonly rssBeforeBytes?: number;
  readonly rssPeakBytes?: number;
  readonly perSessionBytes?: number;
  readonly failures: readonly string[];
}

/**
 * `n` sessions at once, each holding its container open until every session is up: each runs
 * `echo ready; read line; echo "got $line"`, and only when all have printed "ready" (or
 * `readyTimeoutMs` passed) does every client get its line. So the peak RSS is measured with all
 * `n` sessions open together.
 */
export async function concurrentSessions(target: SshTarget, n: number, opts: { rssPid?: number; readyTimeoutMs?: number } = {}): Promise<ConcurrencyResult> {
  const rssBefore = opts.rssPid ? await rssBytes(opts.rssPid) : undefined;
  const sampler = opts.rssPid ? sampleRss(opts.rssPid) : undefined;
  const started = now();
  let ready = 0;
  let allReadyMs: number | undefined;
  let releaseAll!: () => void;
  const allReady = new Promise<void>((resolve) => (releaseAll = resolve));
  const sessions = Array.from({ length: n }, () => {
    const child = spawn('ssh', target.args({ command: 'echo ready; read line; echo "got $line"' }), { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let isReady = false;
    child.stdin.on('error', () => undefined);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!isReady && out.includes('ready\n')) {
        isReady = true;
        if (++ready === n) {
          allReadyMs = now() - started;
          releaseAll();
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const closed = once(child, 'close').then(([code]) => ({ code: code as number | null, out, err }));
    return { child, closed };
  });
  const readyTimer = setTimeout(releaseAll, opts.readyTimeoutMs ?? 240_000);
  await Promise.race([allReady, Promise.all(sessions.map((s) => s.closed))]);
  clearTimeout(readyTimer);
  const peak = await sampler?.stop();
  for (const s of sessions) s.child.stdin.end('go\n');
  const killTimer = setTimeout(() => sessions.forEach((s) => s.child.kill('SIGKILL')), 120_000);
  const results = await Promise.all(sessions.map((s) => s.closed));
  clearTimeout(killTimer);
  const wallMs = now() - started;
  const failures: string[] = [];
  let succeeded = 0;
  for (const r of results) {
    if (r.code === 0 && r.out === 'ready\ngot go\n') succeeded++;
    else failures.push(`exit ${r.code}: ${JSON.stringify(r.out)} ${r.err.trim().slice(0, 200)}`);
  }
  return {
    sessions: n,
    succeeded,
    wallMs,
    allReadyMs,
    ...(rssBefore !== undefined ? { rssBeforeBytes: rssBefore } : {}),
    ...(peak !== undefined ? { rssPeakBytes: peak } : {}),
    ...(rssBefore !== undefined && peak !== undefined ? { perSessionBytes: Math.max(0, peak - rssBefore) / n } : {}),
    failures: failures.slice(0, 5),
  };
}

/** The floors: what the engine alone costs, through its own CLI. */
export async function dockerRunFloor(image: string, n: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await timedShell(`exec docker run --rm --log-driver none ${shellQuote(image)} true`, 60_000);
    if (r.code !== 0) throw new Error(`docker run: ${r.stderr}`);
    samples.push(r.ms);
  }
  return samples;
}

export const BENCH_LABEL = 'airlock.bench';

/** A long-running container for the `docker exec` floors; removed by the returned function. */
export async function floorContainer(image: string): Promise<{ id: string; remove(): Promise<void> }> {
  const { stdout } = await run('docker', ['run', '-d', '--label', `${BENCH_LABEL}=${process.pid}`, '--log-driver', 'none', image, 'sleep', '3600']);
  const id = stdout.trim();
  return { id, remove: () => run('docker', ['rm', '-f', '-v', id]).then(() => undefined) };
}

export async function dockerExecFloor(containerId: string, n: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await timedShell(`exec docker exec ${containerId} true`, 60_000);
    if (r.code !== 0) throw new Error(`docker exec: ${r.stderr}`);
    samples.push(r.ms);
  }
  return samples;
}

/** `docker exec [-t] C head -c N /dev/zero`, timed like `throughput` (first byte to end). */
export async function dockerExecThroughput(containerId: string, bytes: number, tty: boolean): Promise<number> {
  const child = spawn('docker', ['exec', ...(tty ? ['-t'] : []), containerId, 'head', '-c', String(bytes), '/dev/zero'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let started: number | undefined;
  let got = 0;
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    started ??= now();
    got += d.length;
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0 || got !== bytes || started === undefined) throw new Error(`docker exec throughput: got ${got} of ${bytes} (exit ${code}): ${stderr}`);
  return bytes / 1e6 / ((now() - started) / 1000);
}
