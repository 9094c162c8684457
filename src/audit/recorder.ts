/**
 * The tap the SSH layer calls for every event and byte of a connection. Implementations must
 * never block or slow the session: calls return synchronously and queue work internally
 * (bounded, with a counted overflow policy).
 */
import type { ConnectionInfo } from '../backend/backend.js';
import type { AuditTypeNumber, IoStream } from './events.js';

export interface ConnectionRecording {
  /** A connection- or channel-level event. */
  event(type: AuditTypeNumber, channelId: number | null, payload?: Readonly<Record<string, unknown>>): void;
  /** Bytes on a session channel stream (0 stdin, 1 stdout, 2 stderr). */
  io(channelId: number, stream: IoStream, data: Buffer): void;
  /** Auth is done: identity, metadata and deadline are now known (for tags and key templates). */
  identify(info: ConnectionInfo): void;
  /** Seals the recording (flush, hash, hand to storage). Resolves when it is safe on the spool. */
  close(): Promise<void>;
}

export interface Recorder {
  /** Starts recording a connection that was just accepted on the TCP socket. */
  begin(connectionId: string, remoteAddress: string): ConnectionRecording;
  close(): Promise<void>;
}

/** Used when `audit.enable` is false: every call is a no-op. */
export function createNullRecorder(): Recorder {
  const recording: ConnectionRecording = {
    event: () => undefined,
    io: () => undefined,
    identify: () => undefined,
    close: async () => undefined,
  };
  return { begin: () => recording, close: async () => undefined };
}
