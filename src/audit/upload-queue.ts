import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { retry } from '../core/retry.js';
import type { AuditStorage, SealedRecording } from './storage/storage.js';

export interface UploadQueueOptions {
  readonly storage: AuditStorage;
  /** Uploads in flight at once (`audit.s3.parallelUploads` / `audit.file.parallelUploads`). */
  readonly parallel: number;
  /**
   * Sealed recordings held in memory waiting for a free slot (`audit.uploadQueueSize`). When the
   * waiting list is full `enqueue` refuses: the recording stays sealed on the spool only.
   */
  readonly maxWaiting: number;
  /**
   * Called when a queue that refused recordings has room again (its waiting list is down to half):
   * the owner rescans the spool and enqueues what was left there.
   */
  readonly onRoom?: () => void;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Backoff bounds of the retry helper (defaults 500 ms → 10 s). */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
}

const RETRY_WINDOW_MS = 60 * 60_000;

/**
 * Moves sealed recordings from the spool to storage. The spool directory is the durable queue:
 * this object holds at most `parallel` uploads plus `maxWaiting` waiting recordings (directory and
 * manifest, a few KB each), so memory stays bounded however long storage is down. A recording
 * refused by a full queue loses nothing: it stays sealed on the spool, and `onRoom` lets the owner
 * pick it up again. Each upload retries with backoff and jitter without end; a recording is
 * removed from the spool only after storage accepted every file. Recordings still queued at
 * shutdown stay in the spool and are uploaded on the next start.
 */
export class UploadQueue {
  readonly #o: UploadQueueOptions;
  readonly #waiting: SealedRecording[] = [];
  readonly #known = new Set<string>();
  readonly #abort = new AbortController();
  readonly #jobs = new Set<Promise<void>>();
  readonly #idleWaiters = new Set<() => void>();
  #stored = 0;
  #failedAttempts = 0;
  /** Recordings refused since the queue last had room: `onRoom` is due. */
  #refused = 0;

  constructor(options: UploadQueueOptions) {
    this.#o = options;
  }

  /** Queued or uploading recordings. */
  get size(): number {
    return this.#known.size;
  }

  get stats(): { stored: number; failedAttempts: number; pending: number } {
    return { stored: this.#stored, failedAttempts: this.#failedAttempts, pending: this.#known.size };
  }

  has(dir: string): boolean {
    return this.#known.has(dir);
  }

  /** True once a recording was refused and the queue has not had room since. */
  get backlogged(): boolean {
    return this.#refused > 0;
  }

  /**
   * Queues a sealed recording; false when the waiting list is full (or the queue is shut down):
   * the recording then stays on the spool until the owner offers it again.
   */
  enqueue(recording: SealedRecording): boolean {
    if (this.#abort.signal.aborted) return false;
    if (this.#known.has(recording.dir)) return true;
    // Waiting recordings exist only while every slot is busy (#pump starts one at once otherwise).
    if (this.#waiting.length >= this.#o.maxWaiting) {
      if (this.#refused++ === 0) {
        this.#o.logger.warn(
          { code: 'AUDIT_UPLOAD_BACKLOG', uploading: this.#jobs.size, waiting: this.#waiting.length },
          'upload queue full (audit.uploadQueueSize): further sealed recordings wait on the spool and are queued when there is room',
        );
      }
      return false;
    }
    this.#known.add(recording.dir);
    this.#waiting.push(recording);
    this.#pump();
    return true;
  }

  #pump(): void {
    while (this.#jobs.size < this.#o.parallel && this.#waiting.length > 0) {
      const next = this.#waiting.shift() as SealedRecording;
      const job: Promise<void> = this.#upload(next).finally(() => {
        this.#jobs.delete(job);
        this.#known.delete(next.dir);
        this.#pump();
        if (this.#refused > 0 && !this.#abort.signal.aborted && this.#waiting.length <= Math.floor(this.#o.maxWaiting / 2)) {
          this.#o.logger.info({ refused: this.#refused, waiting: this.#waiting.length }, 'upload queue has room again: queueing recordings left on the spool');
          this.#refused = 0;
          this.#o.onRoom?.();
        }
        if (this.#known.size === 0) for (const w of this.#idleWaiters) w();
      });
      this.#jobs.add(job);
    }
  }

  async #upload(recording: SealedRecording): Promise<void> {
    const { manifest } = recording;
    const log = this.#o.logger.child({ connectionId: manifest.connectionId });
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        const location = await retry(() => this.#o.storage.store(recording, signal), {
          deadline: this.#o.clock.now() + RETRY_WINDOW_MS,
          initialDelayMs: this.#o.initialDelayMs ?? 500,
          maxDelayMs: this.#o.maxDelayMs ?? 10_000,
          signal,
          clock: this.#o.clock,
          // A recording whose spool files vanished cannot be uploaded by waiting.
          retryable: (err) => (err as NodeJS.ErrnoException).code !== 'ENOENT',
          onRetry: (err, attempt, delayMs) => {
            this.#failedAttempts++;
            const fields = { code: 'AUDIT_UPLOAD_FAILED', attempt, retryInMs: delayMs, err: err instanceof Error ? err.message : String(err) };
            if (attempt === 1 || attempt % 10 === 0) log.warn(fields, 'recording upload failed; retrying from the spool');
            else log.debug(fields, 'recording upload failed; retrying from the spool');
          },
        });
        if (!this.#o.storage.movesSpool) await rm(recording.dir, { recursive: true, force: true });
        this.#stored++;
        log.info({ location, digest: manifest.digest, complete: manifest.complete }, 'recording stored');
        return;
      } catch (err) {
        if (signal.aborted) return;
        const e = err as NodeJS.ErrnoException;
        log.error({ code: 'AUDIT_UPLOAD_FAILED', err: e.message, dir: recording.dir }, 'recording upload keeps failing; it stays in the spool');
        if (e.code === 'ENOENT') return;
      }
    }
  }

  /**
   * Waits up to `timeoutMs` for the queue to empty, then aborts what is left (it stays in the
   * spool for the next start). Resolves with the number of recordings not stored.
   */
  async drain(timeoutMs: number): Promise<number> {
    if (this.#known.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#idleWaiters.add(done);
      });
      this.#idleWaiters.clear();
    }
    const left = this.#known.size;
    this.#abort.abort();
    this.#waiting.length = 0;
    await Promise.allSettled([...this.#jobs]);
    return left;
  }
}
