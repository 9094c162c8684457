import type Docker from 'dockerode';
import type { Clock } from '../../core/clock.js';
import { AirlockError } from '../../core/errors.js';
import type { ProcessDriver } from './docker-process.js';
import { execExitCode, runShortExec, wasOomKilled } from './engine-ops.js';
import type { DockerTimeouts } from './options.js';
import type { SignalName } from './signals.js';

/**
 * A program run with `docker exec` in the connection's container. The Engine has no API to
 * signal an exec, so signals are a second short exec of the shell's `kill` builtin, as the same
 * user, aimed at the PID the wrapper reported.
 */
export class ExecDriver implements ProcessDriver {
  readonly needsPid = true;
  readonly #container: Docker.Container;
  readonly #exec: Docker.Exec;
  readonly #user: string;
  readonly #timeouts: DockerTimeouts;
  readonly #clock: Clock;

  constructor(container: Docker.Container, exec: Docker.Exec, user: string, timeouts: DockerTimeouts, clock: Clock) {
    this.#container = container;
    this.#exec = exec;
    this.#user = user;
    this.#timeouts = timeouts;
    this.#clock = clock;
  }

  async deliver(name: SignalName, pid: number | undefined): Promise<void> {
    if (pid === undefined) throw new AirlockError('SIGNAL_FAILED', "the program's PID is unknown");
    // `name` is from the fixed allow list and `pid` a number: nothing user-controlled in the script.
    const result = await this.#shortExec(['/bin/sh', '-c', 'kill -s "$1" "$2"', 'airlock-signal', name, String(pid)]);
    if (result.exitCode !== 0) {
      throw new AirlockError('SIGNAL_FAILED', `kill -s ${name} ${pid} failed: ${result.stderr.trim()}`, { details: { signal: name, pid } });
    }
  }

  async resize(cols: number, rows: number, signal: AbortSignal): Promise<void> {
    await this.#exec.resize({ h: rows, w: cols, abortSignal: signal }).catch((err: unknown) => {
      // Podman answers exec resize with 201 Created (Docker: 200), which dockerode calls an error.
      if ((err as { statusCode?: unknown }).statusCode !== 201) throw err;
    });
  }

  async terminate(pid: number | undefined): Promise<void> {
    if (pid === undefined) return;
    // The whole process group when the program leads one (a pty exec does), else just the PID.
    await this.#shortExec(['/bin/sh', '-c', 'kill -s KILL -- "-$1" 2>/dev/null || kill -s KILL "$1"', 'airlock-kill', String(pid)]);
  }

  async exitCode(): Promise<{ code: number; oomKilled: boolean }> {
    const code = await execExitCode(this.#exec, this.#clock.now() + this.#timeouts.signal, this.#timeouts, this.#clock);
    // 137 may be the kernel's OOM killer; the Engine only records that per container.
    const oomKilled = code === 137 ? await wasOomKilled(this.#container, this.#timeouts) : false;
    return { code, oomKilled };
  }

  #shortExec(cmd: string[]) {
    return runShortExec(this.#container, cmd, { user: this.#user, timeoutMs: this.#timeouts.signal, timeouts: this.#timeouts, clock: this.#clock });
  }
}
