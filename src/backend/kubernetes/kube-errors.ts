import { ApiException } from '@kubernetes/client-node';
import { AirlockError, type ErrorCode } from '../../core/errors.js';

/**
 * The API server answers failures with a metav1.Status (`reason`, `message`, `code`); client-node
 * wraps it in an ApiException whose `body` is the raw text. The exec websocket's handshake fails
 * the same way, before the upgrade (KubeHttpError). This module reads both and maps them to codes.
 */
export interface KubeStatus {
  readonly code: number | undefined;
  readonly reason: string | undefined;
  readonly message: string | undefined;
}

/** A non-101 answer to the exec websocket handshake. */
export class KubeHttpError extends Error {
  readonly code: number;
  readonly body: string;
  constructor(code: number, body: string) {
    super(`HTTP ${code}: ${statusFromBody(body).message ?? body.slice(0, 200)}`);
    this.name = 'KubeHttpError';
    this.code = code;
    this.body = body;
  }
}

function statusFromBody(body: unknown): { reason: string | undefined; message: string | undefined } {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return { reason: undefined, message: body.trim() === '' ? undefined : body.slice(0, 300) };
    }
  }
  if (parsed !== null && typeof parsed === 'object') {
    const o = parsed as Record<string, unknown>;
    return {
      reason: typeof o['reason'] === 'string' ? o['reason'] : undefined,
      message: typeof o['message'] === 'string' ? o['message'] : undefined,
    };
  }
  return { reason: undefined, message: undefined };
}

/** The Status behind an error from client-node or our websocket, or all undefined. */
export function kubeStatus(err: unknown): KubeStatus {
  if (err instanceof ApiException || err instanceof KubeHttpError) {
    const code = (err as { code: number }).code;
    return { code, ...statusFromBody((err as { body: unknown }).body) };
  }
  return { code: undefined, reason: undefined, message: undefined };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
]);

function systemCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const errno = (e as { errno?: unknown }).errno;
    if (typeof errno === 'string') return errno;
  }
  return undefined;
}

function isAbort(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  const type = (err as { type?: unknown } | null)?.type;
  return name === 'AbortError' || name === 'TimeoutError' || type === 'aborted';
}

const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * True when a request certainly did not take effect: the connection was never made (refused,
 * unresolvable, unreachable, TLS verification failed) or the server answered with a 4xx. After a
 * timeout, a reset or a 5xx the request may still have happened.
 */
export function certainlyNotApplied(err: unknown): boolean {
  const inner = err instanceof AirlockError && err.cause !== undefined ? err.cause : err;
  const { code } = kubeStatus(inner);
  if (code !== undefined) return code >= 400 && code < 500 && code !== 408 && code !== 429;
  const sys = systemCode(inner);
  return sys !== undefined && (NEVER_CONNECTED.has(sys) || sys.includes('CERT') || sys === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
}

export function isNotFound(err: unknown): boolean {
  return kubeStatus(err).code === 404;
}

/** True for failures worth another attempt (network trouble, throttling, server errors). */
export function isTransient(err: unknown): boolean {
  const { code } = kubeStatus(err);
  if (code !== undefined) return code === 429 || code >= 500;
  const sys = systemCode(err);
  return sys !== undefined && NETWORK_CODES.has(sys) && !sys.includes('CERT');
}

/**
 * Maps anything an API call threw to an AirlockError. `fallback` is the code for a failure of
 * the operation itself (e.g. CONTAINER_START_FAILED while creating a pod).
 */
export function mapKubeError(err: unknown, fallback: ErrorCode, action: string, details: Record<string, unknown> = {}): AirlockError {
  if (err instanceof AirlockError) return err;
  const status = kubeStatus(err);
  const text = status.message ?? (err instanceof Error ? err.message.split('\n')[0] : String(err));
  const withStatus = { ...details, ...(status.code !== undefined ? { httpStatus: status.code } : {}), ...(status.reason ? { reason: status.reason } : {}) };
  if (status.code === 401) {
    return new AirlockError('BACKEND_FORBIDDEN', `${action}: the API server rejected the gateway's credentials (401 Unauthorized)`, { cause: err, details: withStatus });
  }
  if (status.code === 403) {
    return new AirlockError('BACKEND_FORBIDDEN', `${action}: ${text} (check the gateway's Role)`, { cause: err, details: withStatus });
  }
  if (status.code === 422 || (status.code === 400 && status.reason === 'BadRequest' && fallback === 'CONTAINER_START_FAILED')) {
    return new AirlockError('CONTAINER_START_FAILED', `${action}: the API server refused the pod: ${text}`, { cause: err, details: withStatus });
  }
  if (status.code !== undefined) {
    const code: ErrorCode = status.code === 429 || status.code >= 500 ? 'BACKEND_UNAVAILABLE' : fallback;
    return new AirlockError(code, `${action}: ${text}`, { cause: err, details: withStatus });
  }
  if (isAbort(err)) return new AirlockError('TIMEOUT', `${action}: timed out`, { cause: err, details });
  const sys = systemCode(err);
  if (sys !== undefined && NETWORK_CODES.has(sys)) {
    return new AirlockError('BACKEND_UNAVAILABLE', `${action}: the API server is not reachable (${sys})`, { cause: err, details: { ...details, errno: sys } });
  }
  return new AirlockError(fallback, `${action}: ${text}`, { cause: err, details });
}
