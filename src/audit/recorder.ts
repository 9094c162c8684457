/**
 * The tap the SSH layer calls for every event and byte of a connection. Implementations must
 * never block or slow the session: calls return synchronously and queue work internally
 * (bounded, with a counted overflow policy).
 */
import type { ConnectionInfo } from '../backend/backend.js';
import type { AuditTypeNumber, IoStream } from './events.js';

/** Which byte streams a recording keeps (audit.intercept); what the login notice tells the user. */
export interface CapturedStreams {
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  /** Bytes of forwarded TCP connections. */
  readonly forwarding: boolean;
}

export interface ConnectionRecording {
  /**
   * The streams this recording keeps (audit.intercept): the SSH layer taps only those (a stream
   * that is not kept gets no per-chunk listener at all), and the login notice names them.
   */
  readonly captures: CapturedStreams;
  /** A connection- or channel-level event. */
  event(type: AuditTypeNumber, channelId: number | null, payload?: Readonly<Record<string, unknown>>): void;
  /** Bytes on a session channel stream (0 stdin, 1 stdout, 2 stderr). */
  io(channelId: number, stream: IoStream, data: Buffer): void;
  /** Bytes of a forwarded connection: 0 from the client to the workload, 1 the other way. */
  forwardIo(channelId: number, direction: 0 | 1, data: Buffer): void;
  /** Auth is done: identity, metadata and deadline are now known (for tags and key templates). */
  identify(info: ConnectionInfo): void;
  /** Seals the recording (flush, hash, hand to storage). Resolves when it is safe on the spool. */
  close(): Promise<void>;
}

export interface Recorder {
  /**
   * Starts recording a connection that was just accepted on the TCP socket. Throws an
   * AirlockError (AUDIT_UNAVAILABLE) when recording is impossible (spool disk full/unwritable)
   * and `audit.onFailure` is `deny`: the connection then gets no workload (fail closed).
   */
  begin(connectionId: string, remoteAddress: string): ConnectionRecording;
  close(): Promise<void>;
}

/** A recording that keeps nothing. */
export const nullRecording: ConnectionRecording = {
  captures: { stdin: false, stdout: false, stderr: false, forwarding: false },
  event: () => undefined,
  io: () => undefined,
  forwardIo: () => undefined,
  identify: () => undefined,
  close: async () => undefined,
};

/** Used when `audit.enable` is false: every call is a no-op. */
export function createNullRecorder(): Recorder {
  return { begin: () => nullRecording, close: async () => undefined };
}
