import type { ProcessRequest, PtySpec } from '../backend.js';
import { AirlockError } from '../../core/errors.js';
import { markerEcho } from './pid-marker.js';

/**
 * Turns a ProcessRequest into the argv the Engine runs.
 *
 * - `exec` runs `/bin/sh -c <command>`, like OpenSSH runs commands through the user's shell.
 * - `shell` runs the configured shell command, or `bash -l` when the image has /bin/bash and
 *   `sh -l` otherwise — decided inside one `/bin/sh -c` so it costs no extra round trip.
 * - `subsystem` runs the configured binary for that name; unknown names are refused.
 *
 * When `wrap` is set the program is started through a small `/bin/sh -c` wrapper that (with a
 * pty) sets the terminal size with `stty` — old Engines (API < 1.42) ignore ConsoleSize and a
 * resize after start races the program's first look at its size —, optionally waits for one
 * gate line on stdin (files are still being written), prints the PID marker line, and then
 * `exec`s the program, so the PID it printed is the program's. User data only ever travels as
 * positional arguments ("$@"), never inside the script text.
 */
export interface CommandPlanInput {
  readonly request: ProcessRequest;
  readonly shellCommand: readonly string[] | undefined;
  readonly subsystems: Readonly<Record<string, string>>;
  /** Print the PID marker with this nonce (and set the pty size) before exec'ing the program. */
  readonly markerNonce: string | undefined;
  /** Wait for one line on stdin before starting the program. */
  readonly gate: boolean;
}

const AUTO_SHELL = 'if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l';

export function planCommand(input: CommandPlanInput): string[] {
  const { request } = input;
  let program: string[] | undefined;
  switch (request.kind) {
    case 'exec':
      program = ['/bin/sh', '-c', request.command];
      break;
    case 'shell':
      program = input.shellCommand ? [...input.shellCommand] : undefined;
      break;
    case 'subsystem': {
      const binary = Object.hasOwn(input.subsystems, request.command) ? input.subsystems[request.command] : undefined;
      if (!binary) {
        throw new AirlockError('POLICY_DENIED', `unknown subsystem "${request.command}"`, {
          userMessage: `the subsystem "${request.command}" is not available`,
          details: { subsystem: request.command },
        });
      }
      program = [binary];
      break;
    }
  }
  const prefix = wrapperPrefix(input.markerNonce, input.gate, request.pty);
  if (prefix === '') return program ?? ['/bin/sh', '-c', AUTO_SHELL];
  if (!program) return ['/bin/sh', '-c', `${prefix}${AUTO_SHELL}`];
  return ['/bin/sh', '-c', `${prefix}exec "$@"`, 'airlock', ...program];
}

function wrapperPrefix(nonce: string | undefined, gate: boolean, pty: PtySpec | undefined): string {
  let script = '';
  if (nonce !== undefined && pty) {
    const rows = dimension(pty.rows);
    const cols = dimension(pty.cols);
    if (rows > 0 && cols > 0) script += `stty rows ${rows} cols ${cols} 2>/dev/null && airlock_sz=1; `;
  }
  if (gate) script += 'IFS= read -r airlock_gate || exit 125; ';
  if (nonce !== undefined) script += `${markerEcho(nonce, 'airlock_sz')}; `;
  return script;
}

/** A terminal dimension from the client, or 0 when it is not a sane positive integer. */
export function dimension(n: number): number {
  return Number.isInteger(n) && n > 0 && n < 100_000 ? n : 0;
}

/** Container/exec environment as Docker wants it ("KEY=value"), later maps winning. */
export function envList(...maps: ReadonlyArray<Readonly<Record<string, string>> | undefined>): string[] {
  const merged = new Map<string, string>();
  for (const map of maps) {
    if (!map) continue;
    for (const [key, value] of Object.entries(map)) {
      // A name with "=" or NUL cannot be expressed in an environment block; skip it.
      if (key === '' || key.includes('=') || key.includes('\0') || value.includes('\0')) continue;
      merged.set(key, value);
    }
  }
  return [...merged].map(([key, value]) => `${key}=${value}`);
}
