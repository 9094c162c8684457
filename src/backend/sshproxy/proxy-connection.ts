import type { Client, ClientChannel, PseudoTtyOptions } from 'ssh2';
import type { Logger } from 'pino';
import type { BackendConnection, ConnectionInfo, Process, ProcessRequest } from '../backend.js';
import { AirlockError } from '../../core/errors.js';
import { ProxyProcess } from './proxy-process.js';

/** How long kill() waits for the upstream to close a channel before dropping it. */
const KILL_TIMEOUT_MS = 10_000;

/**
 * One gateway connection = one upstream SSH connection; each session channel of the user becomes
 * a session channel upstream (exec, shell or subsystem, with the pty and env requests before it).
 * close() kills every program (see ProxyProcess.kill) and ends the upstream connection; it is
 * idempotent and safe while startProcess calls are in flight.
 */
export class SshProxyConnection implements BackendConnection {
  readonly #client: Client;
  readonly #info: ConnectionInfo;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  readonly #processes = new Set<ProxyProcess>();
  readonly #upstreamClosed: Promise<void>;
  #closing: Promise<void> | undefined;
  #upstreamGone = false;

  constructor(client: Client, info: ConnectionInfo, timeoutMs: number, logger: Logger) {
    this.#client = client;
    this.#info = info;
    this.#timeoutMs = timeoutMs;
    this.#logger = logger;
    this.#upstreamClosed = new Promise((resolve) => client.once('close', () => resolve()));
    void this.#upstreamClosed.then(() => {
      this.#upstreamGone = true;
      if (!this.#closing) this.#logger.warn('upstream SSH connection lost');
    });
  }

  async startProcess(request: ProcessRequest, signal?: AbortSignal): Promise<Process> {
    if (this.#closing) throw new AirlockError('EXEC_FAILED', 'the connection is closing');
    if (this.#upstreamGone) {
      throw new AirlockError('EXEC_FAILED', 'the upstream SSH connection is gone', { userMessage: 'the connection to the upstream SSH server was lost' });
    }
    const proc = await this.#open(request, signal);
    this.#processes.add(proc);
    if (this.#closing) {
      await proc.kill();
      throw new AirlockError('EXEC_FAILED', 'the connection is closing');
    }
    void proc.exited.catch(() => undefined).finally(() => this.#processes.delete(proc));
    return proc;
  }

  close(reason: string): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  async #close(reason: string): Promise<void> {
    const started = Date.now();
    await Promise.all([...this.#processes].map((p) => p.kill()));
    this.#client.end();
    const timer = new Promise<'timeout'>((resolve) => setTimeout(resolve, this.#timeoutMs, 'timeout').unref());
    if ((await Promise.race([this.#upstreamClosed, timer])) === 'timeout') this.#client.destroy();
    this.#logger.info({ reason, ms: Date.now() - started }, 'upstream connection closed');
  }

  #open(request: ProcessRequest, signal: AbortSignal | undefined): Promise<ProxyProcess> {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(this.#info.environment)) env[key] = value.value;
    Object.assign(env, request.env);
    const pty: PseudoTtyOptions | undefined = request.pty
      ? { term: request.pty.term, cols: request.pty.cols, rows: request.pty.rows, width: 0, height: 0 }
      : undefined;
    const what = request.kind === 'subsystem' ? `subsystem ${request.command}` : request.kind;
    return new Promise<ProxyProcess>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, channel?: ClientChannel) => {
        if (settled) {
          // Answered after the timeout or abort: nobody wants this channel any more.
          channel?.close();
          return;
        }
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err || !channel) {
          const timedOut = err?.message === 'timeout';
          reject(
            new AirlockError(timedOut ? 'TIMEOUT' : 'EXEC_FAILED', `upstream refused the ${what}: ${err?.message ?? 'no channel'}`, {
              cause: err,
              details: { kind: request.kind },
              userMessage: timedOut ? 'the upstream SSH server did not answer in time' : 'the upstream SSH server refused to start the program',
            }),
          );
        } else {
          // Built right here, synchronously: ssh2 may emit the program's exit-status and close
          // in the same read as the exec reply, before a promise continuation would run.
          resolve(new ProxyProcess(channel, { pty: request.pty !== undefined, killTimeoutMs: Math.min(this.#timeoutMs, KILL_TIMEOUT_MS) }));
        }
      };
      const timer = setTimeout(() => finish(new Error('timeout')), this.#timeoutMs);
      const onAbort = () => finish(new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const callback = (err: Error | undefined, channel: ClientChannel) => finish(err, channel);
      try {
        if (request.kind === 'exec') this.#client.exec(request.command, { env, ...(pty ? { pty } : {}) }, callback);
        else if (request.kind === 'shell') this.#client.shell(pty ?? false, { env }, callback);
        // RFC 4254 allows env before a subsystem request, but ssh2's subsys() sends none.
        else this.#client.subsys(request.command, callback);
      } catch (err) {
        // ssh2 throws synchronously when the upstream connection is already gone.
        finish(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }
}
