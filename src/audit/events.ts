/**
 * Audit message types. The numbers are ContainerSSH's binary-log numbering (shared reference) so
 * tooling maps across; Airlock never records passwords, tokens or key material.
 */
export const AuditType = {
  Connect: 0,
  Disconnect: 1,
  PasswordAttempt: 100,
  PasswordSuccess: 101,
  PasswordFail: 102,
  PasswordBackendError: 103,
  PubkeyAttempt: 104,
  PubkeySuccess: 105,
  PubkeyFail: 106,
  PubkeyBackendError: 107,
  KeyboardInteractiveAttempt: 108,
  KeyboardInteractiveSuccess: 109,
  KeyboardInteractiveFail: 110,
  KeyboardInteractiveBackendError: 111,
  HandshakeFailed: 198,
  HandshakeSuccessful: 199,
  GlobalRequestUnknown: 200,
  /** tcpip-forward (ssh -R): bindHost, bindPort; then RequestFailed or the bound port. */
  RequestReverseForward: 202,
  RequestCancelReverseForward: 203,
  NewChannel: 300,
  NewChannelSuccessful: 301,
  NewChannelFailed: 302,
  /** direct-tcpip (ssh -L): hostToConnect, portToConnect, originatorHost, originatorPort. */
  NewForwardChannel: 303,
  /** forwarded-tcpip (ssh -R): connectedHost, connectedPort, originatorHost, originatorPort. */
  NewReverseForwardChannel: 304,
  ChannelRequestUnknown: 400,
  ChannelRequestSetEnv: 402,
  ChannelRequestExec: 403,
  ChannelRequestPty: 404,
  ChannelRequestShell: 405,
  ChannelRequestSignal: 406,
  ChannelRequestSubsystem: 407,
  ChannelRequestWindow: 408,
  CloseWrite: 496,
  Close: 497,
  ExitSignal: 498,
  ExitStatus: 499,
  IO: 500,
  RequestFailed: 501,
  // Airlock extensions (9xx: unused by ContainerSSH, whose tools skip unknown types).
  /** I/O the recorder had to drop (queue overflow, spool write failure): counts, no data. */
  RecordingGap: 900,
  /** Who the connection authenticated as (non-sensitive metadata only). */
  Identity: 901,
  /** A file operation of the gateway-side SFTP server (open, close, mkdir, rename, ...): op, path. */
  FileOperation: 920,
  /** Running hash chain value, written when the spool is fsync'd. */
  Checkpoint: 998,
  /** Last message: final chain digest and whether the recording is complete. */
  Seal: 999,
} as const;

const TYPE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(AuditType).map(([name, n]) => [n, name]));

/** "ChannelRequestExec" for 403; "Unknown(123)" for numbers outside the table. */
export function auditTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `Unknown(${type})`;
}

export type AuditTypeNumber = (typeof AuditType)[keyof typeof AuditType];

export interface AuditEvent {
  readonly connectionId: string;
  /** Nanoseconds since the epoch. */
  readonly timestampNs: bigint;
  readonly type: AuditTypeNumber;
  /** null for connection-level events. */
  readonly channelId: number | null;
  /** Secret-free payload (fingerprints, names, sizes — never passwords or tokens). */
  readonly payload: Readonly<Record<string, unknown>>;
}

export type IoStream = 0 | 1 | 2;
