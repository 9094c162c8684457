import type { Connection, RejectConnection } from 'ssh2';

/** RFC 4254 §5.1 reason codes of SSH_MSG_CHANNEL_OPEN_FAILURE. */
export const OPEN_FAILURE = {
  administrativelyProhibited: 1,
  connectFailed: 2,
} as const;

type Reason = (typeof OPEN_FAILURE)[keyof typeof OPEN_FAILURE];

interface ProtocolLike {
  channelOpenFail?: (recipient: number, reason: number, description?: string) => void;
}

/**
 * Refuses a channel open with a chosen reason and a description, which OpenSSH prints
 * ("channel 2: open failed: administratively prohibited: airlock: … [POLICY_DENIED]").
 * ssh2's `reject()` sends CONNECT_FAILED with an empty description once a channel number was
 * reserved, so for the one synchronous call it makes the protocol's `channelOpenFail` is wrapped
 * (private API, like `_sock` in connection.ts; without it this degrades to ssh2's own reply).
 */
export function refuseChannel(client: Connection, reject: RejectConnection, reason: Reason, description: string): void {
  const protocol = (client as unknown as { _protocol?: ProtocolLike })._protocol;
  const original = protocol?.channelOpenFail;
  if (!protocol || typeof original !== 'function') {
    reject();
    return;
  }
  const own = Object.prototype.hasOwnProperty.call(protocol, 'channelOpenFail');
  protocol.channelOpenFail = (recipient: number) => original.call(protocol, recipient, reason, description);
  try {
    reject();
  } finally {
    if (own) protocol.channelOpenFail = original;
    else delete protocol.channelOpenFail;
  }
}
