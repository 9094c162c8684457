/**
 * Where CI-debug sessions live between provisioning and login: the in-memory store (embedded
 * `airlock serve`, one process) or Redis (a separate `airlock broker`, several gateways).
 *
 * Connection slots are leases (connectionId → expiry) rather than a counter, so a gateway that
 * dies without releasing its slots frees them when the leases run out.
 */
import { z } from 'zod';
import type { SessionSlots, TokenSession } from '../../auth/index.js';

export interface SessionRecord extends TokenSession {
  /** Epoch milliseconds. */
  readonly createdAt: number;
}

export interface SessionState {
  readonly record: SessionRecord;
  readonly revoked: boolean;
  /** Epoch milliseconds. */
  readonly revokedAt?: number;
  /** Unexpired connection leases. */
  readonly activeConnections: number;
}

export interface SessionStore extends SessionSlots {
  readonly kind: 'memory' | 'redis';
  /** Stores a new session; the store forgets it at `retainUntil` (epoch ms). */
  create(record: SessionRecord, retainUntil: number): Promise<void>;
  get(sessionId: string): Promise<SessionState | undefined>;
  /** Blocks new logins and notifies `onRevoked` listeners (every gateway). False when unknown. */
  revoke(sessionId: string): Promise<boolean>;
  /** Called with the session id whenever any process revokes a session; returns an unsubscribe. */
  onRevoked(listener: (sessionId: string) => void): () => void;
  /** Throws AirlockError STORE_UNAVAILABLE when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Validates records read back from Redis (edge of the process: never trust stored JSON). */
export const sessionRecordSchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{32}$/),
  image: z.string().min(1),
  commitSha: z.string().optional(),
  prNumber: z.int().positive().optional(),
  actor: z.string().optional(),
  repository: z.string().optional(),
  pipelineRun: z.string().optional(),
  env: z.record(z.string(), z.string()),
  redactedVars: z.array(z.string()),
  maxConnections: z.int().min(1),
  createdAt: z.int(),
  expiresAt: z.int(),
});
