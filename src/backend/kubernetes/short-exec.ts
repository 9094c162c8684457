import type { Readable } from 'node:stream';
import { ExecStream, type ExecStatus, type ExecTarget } from './exec-stream.js';
import type { KubeWebSocketConnector } from './kube-client.js';
import { timeoutSignal } from '../../core/timeout-signal.js';

/**
 * A short helper exec (deliver a signal, write a file): runs `command`, feeds `input` (if any),
 * collects a bounded amount of output, and gives up after `timeoutMs` (the socket is dropped).
 */
export interface ShortExecResult {
  readonly status: ExecStatus;
  readonly stdout: string;
  readonly stderr: string;
}

const MAX_OUTPUT = 16 * 1024;

export async function runShortExec(
  connector: KubeWebSocketConnector,
  target: ExecTarget,
  command: readonly string[],
  options: { readonly timeoutMs: number; readonly input?: Buffer; readonly signal?: AbortSignal },
): Promise<ShortExecResult> {
  const timeout = timeoutSignal(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  const stream = await ExecStream.open(connector, { ...target, command, tty: false, stdin: options.input !== undefined, signal });
  const onAbort = () => stream.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const stdout = collect(stream.stdout);
    const stderr = collect(stream.stderr);
    if (options.input !== undefined) stream.stdin.end(options.input);
    const [status, out, err] = await Promise.all([stream.finished, stdout, stderr]);
    if (signal.aborted && status.kind === 'none') throw signal.reason instanceof Error ? signal.reason : new Error('timed out');
    return { status, stdout: out, stderr: err };
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

async function collect(readable: Readable): Promise<string> {
  let text = '';
  for await (const chunk of readable) {
    if (text.length < MAX_OUTPUT) text += (chunk as Buffer).toString('utf8');
  }
  return text.slice(0, MAX_OUTPUT);
}
