import { AirlockError, type ErrorCode } from '../../core/errors.js';

/**
 * Reading dockerode/docker-modem errors: HTTP failures carry `statusCode` (and Docker's message
 * in `json.message`), transport failures a Node `code` (ECONNREFUSED, ENOENT, ...), aborted
 * calls are AbortErrors whose cause is the AbortSignal's reason.
 */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'EPERM', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ENOTSOCK']);

function field(err: unknown, name: string): unknown {
  return err !== null && typeof err === 'object' ? (err as Record<string, unknown>)[name] : undefined;
}

export function statusCodeOf(err: unknown): number | undefined {
  const code = field(err, 'statusCode');
  return typeof code === 'number' ? code : undefined;
}

/** Docker's own message for an HTTP error, or the error's message. */
export function engineMessage(err: unknown): string {
  const json = field(err, 'json');
  const fromJson = field(json, 'message');
  if (typeof fromJson === 'string' && fromJson !== '') return fromJson;
  if (err instanceof Error) return err.message;
  return String(err);
}

export function isEngineUnreachable(err: unknown): boolean {
  const code = field(err, 'code');
  return typeof code === 'string' && UNREACHABLE.has(code);
}

export function isTimeout(err: unknown): boolean {
  if (err instanceof Error && err.name === 'TimeoutError') return true;
  const cause = field(err, 'cause');
  return cause instanceof Error && cause.name === 'TimeoutError';
}

export function isNotFound(err: unknown): boolean {
  return statusCodeOf(err) === 404;
}

/**
 * Maps an Engine error onto the registry: unreachable engine → BACKEND_UNAVAILABLE, a timed-out
 * call → TIMEOUT, anything else → `fallback` (with Docker's message for the log).
 */
export function mapEngineError(err: unknown, fallback: ErrorCode, what: string, details: Record<string, unknown> = {}): AirlockError {
  if (err instanceof AirlockError) return err;
  const message = `${what}: ${engineMessage(err)}`;
  if (isEngineUnreachable(err)) {
    return new AirlockError('BACKEND_UNAVAILABLE', message, { cause: err, details });
  }
  if (isTimeout(err)) return new AirlockError('TIMEOUT', message, { cause: err, details });
  const status = statusCodeOf(err);
  return new AirlockError(fallback, message, { cause: err, details: status === undefined ? details : { ...details, status } });
}
