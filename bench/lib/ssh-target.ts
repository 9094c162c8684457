/** Something the real OpenSSH client can log in to: the gateway or the baseline sshd. */
import type { TestGateway } from '../../test/helpers/gateway.js';
import type { KeyFixture } from '../../test/helpers/fixture.js';
import { sshArgs } from '../../test/helpers/ssh.js';

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

export function gatewayTarget(name: string, gw: TestGateway, fx: KeyFixture): SshTarget & { readonly gw: TestGateway } {
  return {
    name,
    gw,
    args({ tty = false, command } = {}) {
      return sshArgs(gw, {
        user: 'alice',
        identity: fx.alice.path,
        ...(command !== undefined ? { command } : {}),
        args: [...KEX_ARGS, ...(tty ? ['-tt'] : [])],
      });
    },
  };
}
