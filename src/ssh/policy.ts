/**
 * What a session channel may do: the `security.*` config (ContainerSSH's keys) combined with the
 * credential's own restrictions (SSH certificate force-command / permit-pty /
 * permit-port-forwarding). Pure; the session channel (and forwarding.ts) asks it before acting
 * and shows the user one `airlock: ... [POLICY_DENIED]` line.
 */
import type { SessionRestrictions } from '../auth/provider.js';

export type PolicyMode = 'enable' | 'filter' | 'disable';

/** `enable`: anything not denied; `filter`: only what `allow` lists (minus `deny`); `disable`: nothing. */
export interface ListPolicy {
  readonly mode: PolicyMode;
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

/** The `security.*` keys the session layer enforces (env and maxSessions are handled elsewhere). */
export interface SecurityPolicyConfig {
  /** Runs instead of every exec/shell/subsystem request; the request goes to SSH_ORIGINAL_COMMAND. */
  readonly forceCommand?: string;
  /** `filter`: exec commands must equal an `allow` entry exactly. */
  readonly command: { readonly mode: PolicyMode; readonly allow: readonly string[] };
  readonly shell: { readonly mode: PolicyMode };
  readonly tty: { readonly mode: PolicyMode };
  readonly subsystem: ListPolicy;
  readonly signal: ListPolicy;
  /** `security.forwarding`: each is `enable` or `disable` (never defaultMode's). */
  readonly forwarding: ForwardingPolicyConfig;
}

export interface ForwardingPolicyConfig {
  /** `ssh -L` / `-W` / `-D` (direct-tcpip channels). */
  readonly forwardingMode: PolicyMode;
  /** `ssh -R` (tcpip-forward requests). */
  readonly reverseForwardingMode: PolicyMode;
}

/** Session requests allowed; port forwarding stays off (it is only ever on when configured). */
export const PERMISSIVE_SECURITY: SecurityPolicyConfig = {
  command: { mode: 'enable', allow: [] },
  shell: { mode: 'enable' },
  tty: { mode: 'enable' },
  subsystem: { mode: 'enable', allow: [], deny: [] },
  signal: { mode: 'enable', allow: [], deny: [] },
  forwarding: { forwardingMode: 'disable', reverseForwardingMode: 'disable' },
};

export type PolicyAnswer = { readonly allowed: true } | { readonly allowed: false; readonly message: string };

export type ProgramKind = 'exec' | 'shell' | 'subsystem';

/** What actually runs after policy: possibly a forced command instead of the request. */
export type ProgramDecision =
  | { readonly allowed: true; readonly kind: ProgramKind; readonly command: string; readonly originalCommand?: string }
  | { readonly allowed: false; readonly message: string };

/** `local`: ssh -L (direct-tcpip); `remote`: ssh -R (tcpip-forward). */
export type ForwardingKind = 'local' | 'remote';

export interface SessionPolicy {
  pty(): PolicyAnswer;
  signal(name: string): PolicyAnswer;
  program(kind: ProgramKind, command: string): ProgramDecision;
  forwarding(kind: ForwardingKind): PolicyAnswer;
}

const ALLOWED: PolicyAnswer = { allowed: true };
const deny = (what: string): { allowed: false; message: string } => ({
  allowed: false,
  message: `airlock: ${what} is not allowed by the gateway policy [POLICY_DENIED]`,
});

/** At most this many names are shown in the env refusal line (the rest are counted). */
const ENV_NAMES_SHOWN = 10;

/**
 * The one line a session gets for the `env` requests security.env refused (OpenSSH shows no
 * reason for a refused env request). Names only, never values; a name is shown as printable
 * ASCII (anything else becomes "?") and cut at 64 characters, since it comes from the client.
 */
export function envRefusalLine(names: readonly string[]): string {
  const shown = names.slice(0, ENV_NAMES_SHOWN).map((n) => {
    const clean = n.replace(/[^\x21-\x7e]/g, '?');
    return clean.length > 64 ? `${clean.slice(0, 64)}...` : clean;
  });
  const more = names.length - shown.length;
  const list = shown.join(', ') + (more > 0 ? ` and ${more} more` : '');
  return deny(`setting environment variable${names.length === 1 ? '' : 's'} ${list}`).message;
}

export function listAllows(policy: ListPolicy, name: string): boolean {
  if (policy.deny.includes(name)) return false;
  switch (policy.mode) {
    case 'disable':
      return false;
    case 'enable':
      return true;
    case 'filter':
      return policy.allow.includes(name);
  }
}

export function createSessionPolicy(config: SecurityPolicyConfig, restrictions: SessionRestrictions = {}): SessionPolicy {
  // Like sshd: the server's ForceCommand wins over the certificate's force-command.
  const forced = config.forceCommand ?? restrictions.forceCommand;
  return {
    pty() {
      if (config.tty.mode === 'disable') return deny('a terminal (pty)');
      if (restrictions.permitPty === false) return deny('a terminal (pty) for this certificate');
      return ALLOWED;
    },
    signal(name) {
      return listAllows(config.signal, name) ? ALLOWED : deny(`signal ${name}`);
    },
    forwarding(kind) {
      const what = kind === 'local' ? 'port forwarding (ssh -L)' : 'remote port forwarding (ssh -R)';
      // Only an explicit `enable` opens a network path; `filter` has no list to filter by.
      const mode = kind === 'local' ? config.forwarding.forwardingMode : config.forwarding.reverseForwardingMode;
      if (mode !== 'enable') return deny(what);
      if (restrictions.permitPortForwarding === false) return deny(`${what} for this certificate`);
      return ALLOWED;
    },
    program(kind, command) {
      // A forced command replaces whatever was asked for; the request itself is not judged.
      if (forced !== undefined) return { allowed: true, kind: 'exec', command: forced, ...(command !== '' ? { originalCommand: command } : {}) };
      if (kind === 'shell') return config.shell.mode === 'disable' ? deny('an interactive shell') : { allowed: true, kind, command };
      if (kind === 'subsystem') return listAllows(config.subsystem, command) ? { allowed: true, kind, command } : deny(`subsystem "${command}"`);
      if (config.command.mode === 'disable') return deny('running commands');
      if (config.command.mode === 'filter' && !config.command.allow.includes(command)) return deny(`command "${command}"`);
      return { allowed: true, kind, command };
    },
  };
}

/**
 * The policy of a session channel opened beyond `security.maxSessions`: SSH's channel-open
 * failure carries no text OpenSSH shows (ssh2 sends none), so the channel is accepted and its
 * program request refused with the reason instead.
 */
export function tooManySessionsPolicy(maxSessions: number): SessionPolicy {
  const refused = deny(`more than ${maxSessions} session${maxSessions === 1 ? '' : 's'} on one connection`);
  return { pty: () => ALLOWED, signal: () => refused, program: () => refused, forwarding: () => refused };
}
