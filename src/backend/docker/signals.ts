import type { ExitStatus } from '../backend.js';

/**
 * The signal names an SSH client may send (RFC 4254 §6.10), with their Linux numbers. Anything
 * else is refused before it reaches a shell command line.
 */
export const SIGNAL_NUMBERS = {
  ABRT: 6,
  ALRM: 14,
  FPE: 8,
  HUP: 1,
  ILL: 4,
  INT: 2,
  KILL: 9,
  PIPE: 13,
  QUIT: 3,
  SEGV: 11,
  TERM: 15,
  USR1: 10,
  USR2: 12,
} as const;

export type SignalName = keyof typeof SIGNAL_NUMBERS;

export function isSignalName(name: string): name is SignalName {
  return Object.hasOwn(SIGNAL_NUMBERS, name);
}

function signalByNumber(n: number): SignalName | undefined {
  for (const [name, num] of Object.entries(SIGNAL_NUMBERS)) if (num === n) return name as SignalName;
  return undefined;
}

/**
 * Maps an exit code to an SSH exit status. Neither `docker exec` inspect nor `container.wait`
 * says whether a process died of a signal: both report 128+n (runc for exec, docker-init for
 * the container's main process). So the code is reported as signal n only when the gateway
 * itself delivered signal n to this process (or killed it), or when the Engine says the
 * container was OOM-killed (code 137 → KILL). A program that merely calls `exit(143)` on its own
 * still reports code 143.
 */
export function toExitStatus(code: number, delivered: ReadonlySet<SignalName>, oomKilled: boolean): ExitStatus {
  if (code > 128) {
    const name = signalByNumber(code - 128);
    if (name && (delivered.has(name) || (name === 'KILL' && oomKilled))) {
      return { kind: 'signal', signal: name, coreDumped: false };
    }
  }
  return { kind: 'code', code };
}
