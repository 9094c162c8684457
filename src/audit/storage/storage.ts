import type { Manifest } from '../manifest.js';

/** A recording sealed on the spool: its directory holds the manifest and every listed file. */
export interface SealedRecording {
  readonly dir: string;
  readonly manifest: Manifest;
}

/**
 * Where sealed recordings go. `store` must be idempotent (the upload queue retries it after
 * failures and after restarts) and must write the manifest last, so a manifest in storage means
 * every file is there.
 */
export interface AuditStorage {
  readonly kind: 'file' | 's3';
  /** Resolves with the location (directory or s3:// URL) once every file is stored. */
  store(recording: SealedRecording, signal: AbortSignal): Promise<string>;
  /** True when `store` moved the spool directory away (nothing left to delete). */
  readonly movesSpool: boolean;
}

/** Content types of the files of a recording. */
export function contentType(name: string): string {
  if (name.endsWith('.cast')) return 'application/x-asciicast';
  if (name.endsWith('.jsonl')) return 'application/x-ndjson';
  if (name.endsWith('.json')) return 'application/json';
  return 'application/octet-stream';
}
