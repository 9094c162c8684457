/** Something the real OpenSSH client can log in to: the gateway or the baseline sshd. */
import type { TestGateway } from '../../test/helpers/gateway.js';
import type { KeyFixture } from '../../test/helpers/fixture.js';

export interface SshTarget {
  readonly name: string;
  /** ssh arguments (destination and command included). */
  args(opts?: { tty?: boolean; command?: string }): string[];
}

/**
 * The key exchange the gateway negotiates; passed to both sides so OpenSSH's default hybrid KEX
 * (sntrup761x25519, ~80 ms more) does not penalise the baseline.
 */
export const KEX_ARGS = ['-o', 'KexAlgorithms=curve25519-sha256'] as const;

/** The client options both targets share (so neither gets an easier client). */
export function clientArgs(port: number, knownHosts: string, identity: string): string[] {
  return [
    '-p', String(port),
    '-F', '/dev/null',
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    // 100 clients logging in at once on 2 cores: the default handshake timeouts are too tight
    // for either side.
    '-o', 'ConnectTimeout=60',
    '-i', identity,
    ...KEX_ARGS,
  ];
}

export function gatewayTarget(name: string, gw: TestGateway, fx: KeyFixture): SshTarget & { readonly gw: TestGateway } {
  return {
    name,
    gw,
    args({ tty = false, command } = {}) {
      return [...clientArgs(gw.port, gw.knownHosts, fx.alice.path), ...(tty ? ['-tt'] : []), 'alice@127.0.0.1', ...(command !== undefined ? ['--', command] : [])];
    },
  };
}
