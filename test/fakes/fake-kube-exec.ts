/**
 * The exec subresource of the FAKE Kubernetes API server, over the websocket channel protocols
 * (`v5.channel.k8s.io`, `v4.channel.k8s.io`) as the API server/kubelet speak them:
 *
 * - every binary message is one channel byte + payload: 0 stdin (client → server), 1 stdout,
 *   2 stderr, 3 error/status (a metav1.Status JSON), 4 resize (client → server, `{"Width":w,
 *   "Height":h}`); v5 adds 255 = close a stream (`[255, 0]` closes stdin);
 * - right after the upgrade the server writes one empty message to the lowest writable channel
 *   (stdout, else stderr, else status) — remotecommand/websocket.go does that;
 * - with `tty` the program runs on a pseudo terminal (via util-linux `script`), stderr is merged
 *   (tty + stderr is treated as stderr=false, like the kubelet), and resize messages set the
 *   terminal size (one TIOCSWINSZ on the program's pty via python3, which raises SIGWINCH;
 *   input that follows a resize is held until it is applied, as a runtime's ioctl is instant);
 * - at the end: stdout/stderr drained, then the status on channel 3 — `Success`, or `Failure` with
 *   reason `NonZeroExitCode` and cause `ExitCode` (128+n for a signal, as runc reports it), or
 *   `InternalError` when the program cannot start — then a normal close (1000).
 * - A client that goes away: stdin ends and the output pipes close (the program gets EPIPE, or
 *   SIGHUP through its terminal), as with a real kubelet; the program is not killed otherwise.
 * Backpressure both ways: the program's output is paused while the socket's send buffer is full,
 * the socket is paused while the program does not read its stdin.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, readlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import type { WebSocket } from 'ws';
import type { ContainerRuntime } from './fake-kube-pod.js';
import { signalNumber } from './fake-kube-pod.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

export interface ExecRequest {
  readonly command: readonly string[];
  readonly container: string | undefined;
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
}

/** PodExecOptions from the query (the API server accepts true/1 for booleans). */
export function parseExecQuery(params: URLSearchParams): ExecRequest {
  const flag = (name: string) => ['true', '1', 'True', 'TRUE'].includes(params.get(name) ?? '');
  const tty = flag('tty');
  return {
    command: params.getAll('command'),
    container: params.get('container') ?? undefined,
    stdin: flag('stdin'),
    stdout: flag('stdout'),
    stderr: flag('stderr') && !tty,
    tty,
  };
}

const HIGH_WATER = 1024 * 1024;

export interface ExecSessionHooks {
  readonly ended: () => void;
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function runExecSession(ws: WebSocket, protocol: string, req: ExecRequest, rt: ContainerRuntime, hooks: ExecSessionHooks): void {
  const v5 = protocol === 'v5.channel.k8s.io';
  const argv = [...req.command];
  const identity = isRoot && rt.uid !== undefined ? { uid: rt.uid, gid: rt.gid ?? rt.uid } : {};
  let child: ChildProcess;
  if (req.tty) {
    child = spawn('script', ['-qfec', `exec ${argv.map(shQuote).join(' ')}`, '/dev/null'], {
      cwd: rt.cwd,
      env: { ...rt.env, SHELL: '/bin/sh' },
      detached: true,
      stdio: ['pipe', 'pipe', 'ignore'],
      ...identity,
    });
  } else {
    child = spawn(argv[0] ?? '', argv.slice(1), {
      cwd: rt.cwd,
      env: rt.env,
      detached: true,
      stdio: [req.stdin ? 'pipe' : 'ignore', req.stdout ? 'pipe' : 'ignore', req.stderr ? 'pipe' : 'ignore'],
      ...identity,
    });
  }

  const send = (channel: number, payload: Buffer, source?: Readable) => {
    if (ws.readyState !== ws.OPEN) return;
    const frame = Buffer.allocUnsafe(payload.length + 1);
    frame[0] = channel;
    payload.copy(frame, 1);
    ws.send(frame, () => {
      if (source?.isPaused() && ws.bufferedAmount < HIGH_WATER / 2) source.resume();
    });
    if (source && ws.bufferedAmount > HIGH_WATER) source.pause();
  };

  // remotecommand/websocket.go: an empty message on the lowest writable channel says "ready".
  send(req.stdout || req.tty ? 1 : req.stderr ? 2 : 3, Buffer.alloc(0));

  const outputs: Promise<void>[] = [];
  const pipeOut = (stream: Readable | null, channel: number) => {
    if (!stream) return;
    stream.on('data', (chunk: Buffer) => send(channel, chunk, stream));
    outputs.push(
      new Promise((resolve) => {
        stream.once('close', () => resolve());
        stream.once('error', () => resolve());
      }),
    );
  };
  pipeOut(child.stdout, 1);
  pipeOut(child.stderr, 2);
  child.stdin?.on('error', () => undefined);
  child.stdin?.on('drain', () => ws.resume());

  // A real runtime applies a resize with one ioctl, long before the next keystroke arrives; the
  // fake needs a helper process for it, so input that follows a resize waits until it is applied.
  let resizing = Promise.resolve();
  let pendingResizes = 0;
  const writeStdin = (payload: Buffer) => {
    if (!child.stdin || child.stdin.writableEnded || child.stdin.destroyed) return;
    if (!child.stdin.write(payload)) ws.pause();
  };
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary || data.length === 0) return;
    const channel = data[0];
    const payload = data.subarray(1);
    if (channel === 0 && req.stdin) {
      if (pendingResizes > 0) resizing = resizing.then(() => writeStdin(payload));
      else writeStdin(payload);
    } else if (channel === 4 && req.tty) {
      try {
        const size = JSON.parse(payload.toString('utf8')) as { Width?: number; Height?: number };
        const cols = Number(size.Width);
        const rows = Number(size.Height);
        if (cols > 0 && rows > 0) {
          pendingResizes++;
          resizing = resizing
            .then(() => resizePty(child, cols, rows))
            .catch(() => undefined)
            .finally(() => pendingResizes--);
        }
      } catch {
        // the kubelet logs and ignores an undecodable resize
      }
    } else if (channel === 255 && v5 && payload[0] === 0) {
      if (pendingResizes > 0) resizing = resizing.then(() => void child.stdin?.end());
      else child.stdin?.end();
    }
  });

  let finished = false;
  ws.on('close', () => {
    if (finished) return;
    // The client went away: its end of every stream is gone.
    child.stdin?.destroy();
    child.stdout?.destroy();
    child.stderr?.destroy();
    if (req.tty && child.pid) {
      try {
        process.kill(child.pid, 'SIGHUP');
      } catch {
        // already gone
      }
    }
  });

  const exit = new Promise<{ code: number } | { error: string }>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? 'executable file not found in $PATH' : err.message;
      resolve({ error: `OCI runtime exec failed: exec failed: unable to start container process: exec: "${argv[0] ?? ''}": ${why}: unknown` });
    });
    child.once('exit', (code, signal) => resolve({ code: code ?? 128 + signalNumber(signal) }));
  });

  void exit.then(async (result) => {
    await Promise.all(outputs);
    finished = true;
    let status: Record<string, unknown>;
    if ('error' in result) {
      status = { metadata: {}, status: 'Failure', message: result.error, reason: 'InternalError', details: { causes: [{ message: result.error }] }, code: 500 };
    } else if (result.code === 0) {
      status = { metadata: {}, status: 'Success' };
    } else {
      status = {
        metadata: {},
        status: 'Failure',
        message: `command terminated with non-zero exit code: error executing command [${argv.join(' ')}], exit code ${result.code}`,
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: String(result.code) }] },
      };
    }
    send(3, Buffer.from(JSON.stringify(status)));
    if (ws.readyState === ws.OPEN) ws.close(1000);
    hooks.ended();
  });
}

const SET_WINSIZE =
  'import fcntl, os, struct, sys, termios\n' +
  'fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)\n' +
  "fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', int(sys.argv[2]), int(sys.argv[3]), 0, 0))\n";

/** Sets the size of the pty the program (script's child) has as its stdin; raises SIGWINCH. */
async function resizePty(scriptProcess: ChildProcess, cols: number, rows: number): Promise<void> {
  const pid = scriptProcess.pid;
  if (!pid) return;
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
      if (children[0]) {
        const tty = await readlink(`/proc/${children[0]}/fd/0`);
        if (tty.startsWith('/dev/pts/')) {
          // One TIOCSWINSZ for both dimensions, like the runtime (`stty rows R cols C` would make
          // two, and a program could read the size half-changed in between).
          await run('python3', ['-c', SET_WINSIZE, tty, String(rows), String(cols)]);
          return;
        }
      }
    } catch {
      if (scriptProcess.exitCode !== null) return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
