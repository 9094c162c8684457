import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import type { AuditConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { AirlockError } from '../core/errors.js';
import { createNullRecorder, nullRecording, type ConnectionRecording, type Recorder } from './recorder.js';
import { MemoryBudget } from './memory-budget.js';
import { createNsClock } from './ns-clock.js';
import { SpoolRecording, type RecordingFormats } from './recording.js';
import { sealRecording, sealSpool } from './recover.js';
import { MANIFEST_FILE, readManifest, type Manifest } from './manifest.js';
import { MIN_SPOOL_FREE_BYTES, listSpool, openSpool, spoolFreeBytes } from './spool.js';
import { UploadQueue } from './upload-queue.js';
import type { AuditStorage } from './storage/storage.js';
import { FILE_SPOOL_DIR, createFileStorage } from './storage/file-storage.js';
import { createS3Storage } from './storage/s3-storage.js';
import { createS3Client } from './storage/s3-client.js';

export interface RecorderDeps {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** How long `close()` waits for queued uploads before leaving them in the spool. */
  readonly drainTimeoutMs?: number;
  /** Interval of fsync checkpoints of live recordings (default 1 s). */
  readonly checkpointIntervalMs?: number;
  /** Interval of the spool rescan that retries recordings whose sealing failed (default 30 s). */
  readonly rescanIntervalMs?: number;
  /** Replaces the storage built from the config (tests: a storage that can be held back). */
  readonly storage?: AuditStorage;
}

export interface RecorderStats {
  readonly active: number;
  readonly started: number;
  /** Connections let through unrecorded (`audit.onFailure: allow`). */
  readonly unrecorded: number;
  /** Connections refused because recording was impossible (`deny`). */
  readonly refused: number;
  readonly writeFailures: number;
  readonly uploads: { stored: number; failedAttempts: number; pending: number };
}

export interface AuditRecorder extends Recorder {
  readonly spoolDir: string;
  stats(): RecorderStats;
}

/** Recordings derived/compressed at once in the background. */
const FINALIZE_CONCURRENCY = 2;

export const CRASH_REASON = 'the gateway stopped before the recording was sealed (crash, kill -9 or power loss); everything up to the last checkpoint is kept';

export function recordingFormats(format: AuditConfig['format']): RecordingFormats {
  return { binary: format === 'binary' || format === 'both', asciicast: format === 'asciinema' || format === 'both' };
}

export function spoolDirectory(config: AuditConfig): string {
  if (config.storage === 's3') return config.s3.local as string;
  return join(config.file.directory as string, FILE_SPOOL_DIR);
}

export function createStorage(config: AuditConfig): AuditStorage {
  if (config.storage === 'file') return createFileStorage(config.file.directory as string);
  const s3 = config.s3;
  return createS3Storage({
    client: createS3Client({
      region: s3.region,
      pathStyleAccess: s3.pathStyleAccess,
      ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
      ...(s3.accessKey ? { accessKey: s3.accessKey } : {}),
      ...(s3.secretKey ? { secretKey: s3.secretKey } : {}),
    }),
    bucket: s3.bucket as string,
    keyTemplate: s3.keyTemplate,
    partSize: s3.uploadPartSize,
    labels: { ip: s3.metadata.ip, username: s3.metadata.username },
  });
}

/**
 * Builds the gateway's recorder from `audit.*`. With audit disabled it is the no-op recorder.
 * Otherwise it locks the spool, seals and queues recordings an earlier run left behind (crash),
 * and starts the checkpoint timer. `close()` (after the SSH server has drained) waits up to
 * `drainTimeoutMs` for uploads; what is left stays in the spool for the next start.
 */
export async function createRecorder(config: AuditConfig, deps: RecorderDeps): Promise<AuditRecorder> {
  if (!config.enable) {
    const none = { started: 0, unrecorded: 0, refused: 0, writeFailures: 0, uploads: { stored: 0, failedAttempts: 0, pending: 0 } };
    return { ...createNullRecorder(), spoolDir: '', stats: () => ({ active: 0, ...none }) };
  }
  const logger = deps.logger.child({ component: 'audit' });
  const clock = deps.clock ?? systemClock;
  const nsClock = createNsClock(clock);
  const spoolDir = spoolDirectory(config);
  const lock = await openSpool(spoolDir);
  const storage = deps.storage ?? createStorage(config);
  // Bounded in memory (uploadQueueSize); what a full queue refuses waits sealed on the spool and
  // is offered again by refill() once the queue has room (or at the next rescan / start).
  const queue: UploadQueue = new UploadQueue({
    storage,
    parallel: config.storage === 's3' ? config.s3.parallelUploads : config.file.parallelUploads,
    maxWaiting: config.uploadQueueSize,
    onRoom: () => void refill(),
    logger,
    clock,
  });
  const budget = new MemoryBudget(config.queueSize);
  const formats = recordingFormats(config.format);
  const active = new Map<string, SpoolRecording>();
  const unsealed = new Map<string, string>();
  const counters = { started: 0, unrecorded: 0, refused: 0, writeFailures: 0 };
  let closing = false;
  /** Sealed recordings on the spool that a full upload queue refused (refill() picks them up). */
  let spoolBacklog = false;
  let refilling = false;

  const onSealed = (dir: string, manifest: Manifest) => {
    logger.info(
      { connectionId: manifest.connectionId, digest: manifest.digest, complete: manifest.complete, dropped: manifest.dropped, files: manifest.files.map((f) => f.name) },
      'recording sealed',
    );
    if (!manifest.complete) logger.warn({ connectionId: manifest.connectionId, reason: manifest.incompleteReason }, 'recording sealed as incomplete');
    if (!queue.enqueue({ dir, manifest })) spoolBacklog = true;
  };

  // Background finalizer: derives casts and the command log, compresses and writes the
  // manifest of recordings whose spool file is closed. Two at a time, so a burst of ended
  // sessions does not take every CPU from the live ones.
  const finalizing = new Set<string>();
  const finalizeQueue: Array<{ dir: string; reason: string; spoolSealed: boolean }> = [];
  const finalizeIdle = new Set<() => void>();
  let finalizeRunning = 0;
  const pumpFinalize = () => {
    while (finalizeRunning < FINALIZE_CONCURRENCY && finalizeQueue.length > 0) {
      const job = finalizeQueue.shift() as { dir: string; reason: string; spoolSealed: boolean };
      finalizeRunning++;
      void sealRecording(job.dir, job.reason, { spoolSealed: job.spoolSealed })
        .then(
          (manifest) => {
            unsealed.delete(job.dir);
            onSealed(job.dir, manifest);
          },
          (err: unknown) => {
            unsealed.set(job.dir, job.reason);
            logger.error({ code: 'AUDIT_SPOOL_WRITE_FAILED', dir: job.dir, err: (err as Error).message }, 'recording cannot be sealed yet; retrying later');
          },
        )
        .finally(() => {
          finalizeRunning--;
          finalizing.delete(job.dir);
          pumpFinalize();
          if (finalizing.size === 0) for (const w of finalizeIdle) w();
        });
    }
  };
  const finalize = (dir: string, reason: string, spoolSealed = false) => {
    if (finalizing.has(dir)) return;
    finalizing.add(dir);
    finalizeQueue.push({ dir, reason, spoolSealed });
    pumpFinalize();
  };

  /** Queues every spool recording that is neither live, nor being finalized, nor uploading. */
  const rescan = async (reason: string) => {
    for (const name of await listSpool(spoolDir)) {
      const dir = join(spoolDir, name);
      if (active.has(name) || finalizing.has(dir) || queue.has(dir)) continue;
      finalize(dir, unsealed.get(dir) ?? reason);
    }
  };

  /**
   * Offers the sealed recordings on the spool that the queue does not know (a full queue refused
   * them) until it is full again. Unsealed ones belong to the finalizer and rescan(). Spool order
   * (by connection id); a recording refused again is offered at the next refill.
   */
  const refill = async () => {
    if (refilling || closing) return;
    refilling = true;
    spoolBacklog = false;
    try {
      for (const name of await listSpool(spoolDir)) {
        const dir = join(spoolDir, name);
        if (active.has(name) || finalizing.has(dir) || queue.has(dir) || unsealed.has(dir) || !existsSync(join(dir, MANIFEST_FILE))) continue;
        // Gone meanwhile (uploaded by a job that just ended) or unreadable: the next rescan sees it.
        const manifest = await readManifest(dir).catch(() => undefined);
        if (!manifest) continue;
        if (!queue.enqueue({ dir, manifest })) {
          spoolBacklog = true;
          break;
        }
      }
    } catch (err) {
      spoolBacklog = true;
      logger.error({ code: 'AUDIT_UPLOAD_BACKLOG', spool: spoolDir, err: (err as Error).message }, 'the spool cannot be listed to queue waiting recordings; retrying later');
    } finally {
      refilling = false;
    }
  };

  // Recordings a killed gateway left: each spool file gets its Seal (marked incomplete) before
  // the gateway serves again; deriving, compressing and uploading them runs in the background.
  for (const name of await listSpool(spoolDir)) {
    await sealSpool(join(spoolDir, name), CRASH_REASON).catch((err: unknown) =>
      logger.error({ code: 'AUDIT_SPOOL_WRITE_FAILED', dir: join(spoolDir, name), err: (err as Error).message }, 'leftover recording cannot be sealed yet; retrying later'),
    );
  }
  await rescan(CRASH_REASON);
  const leftovers = finalizing.size;
  if (config.storage === 's3') {
    const s3 = config.s3;
    // A warning only: recordings wait in the spool until the bucket is reachable.
    await createS3Client({ region: s3.region, pathStyleAccess: s3.pathStyleAccess, ...(s3.endpoint ? { endpoint: s3.endpoint } : {}), ...(s3.accessKey && s3.secretKey ? { accessKey: s3.accessKey, secretKey: s3.secretKey } : {}) })
      .send(new HeadBucketCommand({ Bucket: s3.bucket as string }), { abortSignal: AbortSignal.timeout(5_000) })
      .catch((err: unknown) => logger.warn({ code: 'AUDIT_UPLOAD_FAILED', bucket: s3.bucket, err: (err as Error).message ?? String(err) }, 'S3 bucket not reachable at start-up; recordings wait in the spool'));
  }

  const checkpointTimer = setInterval(() => {
    for (const r of active.values()) void r.checkpoint();
  }, deps.checkpointIntervalMs ?? 1_000);
  checkpointTimer.unref();
  const rescanTimer = setInterval(() => {
    if (unsealed.size > 0) void rescan('the spool could not be written');
    // Normally onRoom refills; this catches a refill that failed or raced with a full queue.
    if (spoolBacklog && !queue.backlogged) void refill();
  }, deps.rescanIntervalMs ?? 30_000);
  rescanTimer.unref();

  const refuse = (reason: string, details: Record<string, unknown>): ConnectionRecording => {
    if (config.onFailure === 'deny') {
      counters.refused++;
      throw new AirlockError('AUDIT_UNAVAILABLE', `the connection cannot be recorded: ${reason}`, { details: { spool: spoolDir, ...details } });
    }
    counters.unrecorded++;
    logger.error({ code: 'AUDIT_UNAVAILABLE', spool: spoolDir, reason, ...details }, 'recording impossible; audit.onFailure is allow, so the connection continues UNRECORDED');
    return nullRecording;
  };

  logger.info({ storage: config.storage, spool: spoolDir, format: config.format, leftoverRecordings: leftovers }, 'audit recorder ready');

  return {
    spoolDir,
    begin(connectionId: string, remoteAddress: string): ConnectionRecording {
      if (closing) return refuse('the gateway is shutting down', {});
      let free: number;
      try {
        free = spoolFreeBytes(spoolDir);
      } catch (err) {
        return refuse(`the spool ${spoolDir} is not usable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {});
      }
      if (free < MIN_SPOOL_FREE_BYTES) return refuse(`the spool ${spoolDir} is full (${free} bytes free)`, { freeBytes: free });
      try {
        const recording = new SpoolRecording({
          dir: join(spoolDir, connectionId),
          connectionId,
          remoteAddress,
          formats,
          intercept: config.intercept,
          budget,
          clock: nsClock,
          logger: logger.child({ connectionId }),
          onWriteFailure: () => counters.writeFailures++,
          onClosed: (dir, reason, spoolSealed) => {
            active.delete(connectionId);
            finalize(dir, reason, spoolSealed);
          },
        });
        active.set(connectionId, recording);
        counters.started++;
        return recording;
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        return refuse(`the spool ${spoolDir} cannot be written (${e.code ?? e.message})`, { errno: e.code });
      }
    },
    stats(): RecorderStats {
      return { active: active.size, ...counters, uploads: queue.stats };
    },
    async close(): Promise<void> {
      if (closing) return;
      closing = true;
      clearInterval(checkpointTimer);
      clearInterval(rescanTimer);
      await Promise.allSettled([...active.values()].map((r) => r.close()));
      // Retry what could not be sealed before (e.g. the disk was full and has space now).
      await rescan('the spool could not be written').catch(() => undefined);
      const deadline = clock.now() + (deps.drainTimeoutMs ?? 10_000);
      if (finalizing.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, deadline - clock.now()));
          finalizeIdle.add(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      // Sealed spool files not finalized by now are finished at the next start.
      const left = (await queue.drain(Math.max(0, deadline - clock.now()))) + finalizing.size;
      if (left > 0 || spoolBacklog) logger.warn({ left, backlog: spoolBacklog, spool: spoolDir }, 'recordings not uploaded before shutdown stay in the spool; they are uploaded at the next start');
      logger.info({ ...counters, uploads: queue.stats }, 'audit recorder stopped');
      lock.release();
    },
  } satisfies AuditRecorder;
}
