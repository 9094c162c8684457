import type { SFTPWrapper } from 'ssh2';

/**
 * What a session channel can say besides SFTP packets once ssh2 has made it an SFTPWrapper:
 * ssh2 gives that object no stderr and no exit(), but the channel underneath takes extended
 * data and channel requests like any other. These reach into ssh2's channel internals
 * (`_protocol`, `outgoing`, stable across ssh2 1.x) — the one place that does.
 */
interface ChannelInternals {
  readonly _protocol?: {
    channelExtData?: (id: number, data: Buffer, type: number) => void;
    exitStatus?: (id: number, status: number) => void;
  };
  readonly outgoing?: { readonly id: number; readonly state: string };
}

function openChannel(wrapper: SFTPWrapper): { id: number; protocol: NonNullable<ChannelInternals['_protocol']> } | undefined {
  const internals = wrapper as unknown as ChannelInternals;
  const out = internals.outgoing;
  if (!out || out.state !== 'open' || !internals._protocol) return undefined;
  return { id: out.id, protocol: internals._protocol };
}

/**
 * One line on the channel's stderr (RFC 4254 §5.2, SSH_EXTENDED_DATA_STDERR = 1), which
 * OpenSSH's client prints — the only way to tell an SFTP user why. A short line, so the peer's
 * window (2 MiB when fresh) always has room for it.
 */
export function sftpStderr(wrapper: SFTPWrapper, line: string): void {
  const ch = openChannel(wrapper);
  ch?.protocol.channelExtData?.(ch.id, Buffer.from(line + '\r\n'), 1);
}

/**
 * exit-status (RFC 4254 §6.10) before the channel closes: `scp` (SFTP mode) runs ssh and fails
 * when ssh exits without a remote status, even after a good transfer.
 */
export function sftpExit(wrapper: SFTPWrapper, status: number): void {
  const ch = openChannel(wrapper);
  ch?.protocol.exitStatus?.(ch.id, status);
}
