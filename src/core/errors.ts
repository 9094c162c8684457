/**
 * One error type for the whole gateway. The `code` is stable (append-only registry below, listed
 * in docs/errors.md) and is shared by logs, metric labels and the line the SSH user sees.
 */
export type ErrorKind = 'user' | 'system';

interface CodeInfo {
  readonly kind: ErrorKind;
  /** The one line an SSH user may see. Never contains internal addresses or stack traces. */
  readonly userMessage: string;
}

export const ERROR_CODES = {
  CONFIG_INVALID: { kind: 'user', userMessage: 'the gateway configuration is invalid' },
  CONFIG_FILE_UNREADABLE: { kind: 'user', userMessage: 'the configuration file cannot be read' },
  HOSTKEY_INVALID: { kind: 'system', userMessage: 'the gateway host key cannot be loaded' },
  AUTH_REJECTED: { kind: 'user', userMessage: 'authentication failed' },
  AUTH_BACKEND_ERROR: { kind: 'system', userMessage: 'the authentication service is unavailable; try again later' },
  AUTH_BAD_RESPONSE: { kind: 'system', userMessage: 'the authentication service gave an invalid answer; try again later' },
  AUTH_SIGNATURE_INVALID: { kind: 'user', userMessage: 'the public key signature is invalid' },
  LOGIN_GRACE_EXPIRED: { kind: 'user', userMessage: 'login timed out' },
  BACKEND_UNAVAILABLE: { kind: 'system', userMessage: 'the container engine is unavailable; try again later' },
  IMAGE_NOT_FOUND: { kind: 'user', userMessage: 'the container image does not exist' },
  IMAGE_PULL_FAILED: { kind: 'system', userMessage: 'the container image could not be pulled' },
  CONTAINER_START_FAILED: { kind: 'system', userMessage: 'the container could not be started' },
  CONTAINER_FILES_FAILED: { kind: 'system', userMessage: 'files could not be written into the container' },
  EXEC_FAILED: { kind: 'system', userMessage: 'the program could not be started in the container' },
  SIGNAL_FAILED: { kind: 'system', userMessage: 'the signal could not be delivered' },
  POLICY_DENIED: { kind: 'user', userMessage: 'this request is not allowed by the gateway policy' },
  IDLE_TIMEOUT: { kind: 'user', userMessage: 'the connection was idle for too long and has been closed' },
  GATEWAY_SHUTDOWN: { kind: 'system', userMessage: 'the gateway is shutting down' },
  TIMEOUT: { kind: 'system', userMessage: 'the operation timed out' },
  INTERNAL: { kind: 'system', userMessage: 'internal gateway error' },
  AUTH_METHOD_UNSUPPORTED: { kind: 'user', userMessage: 'this authentication method is not enabled' },
  AUTH_ABORTED: { kind: 'user', userMessage: 'authentication was interrupted' },
  AUDIT_UNAVAILABLE: { kind: 'system', userMessage: 'sessions cannot be recorded right now, so none are allowed; try again later' },
  // CI-debug broker (src/broker, src/auth/token.ts)
  TOKEN_INVALID: { kind: 'user', userMessage: 'the debug-session token is not valid' },
  TOKEN_EXPIRED: { kind: 'user', userMessage: 'the debug-session token has expired; provision a new session' },
  TOKEN_NOT_YET_VALID: { kind: 'user', userMessage: 'the debug-session token is not valid yet; check the clocks' },
  SESSION_NOT_FOUND: { kind: 'user', userMessage: 'the debug session does not exist or has ended; provision a new session' },
  SESSION_REVOKED: { kind: 'user', userMessage: 'the debug session has been revoked' },
  SESSION_CONNECTION_LIMIT: { kind: 'user', userMessage: 'the debug session already has its maximum number of connections; close the other one first' },
  STORE_UNAVAILABLE: { kind: 'system', userMessage: 'the debug-session service is unavailable; try again later' },
  PROVISION_UNAUTHORIZED: { kind: 'user', userMessage: 'missing or invalid provisioning key' },
  REQUEST_INVALID: { kind: 'user', userMessage: 'the request is invalid' },
  TOKEN_KEY_INVALID: { kind: 'system', userMessage: 'the token signing keys cannot be loaded' },
  // Audit pipeline (src/audit, `airlock audit`)
  AUDIT_SPOOL_WRITE_FAILED: { kind: 'system', userMessage: 'the session recording could not be written' },
  AUDIT_QUEUE_OVERFLOW: { kind: 'system', userMessage: 'part of the session recording was dropped' },
  AUDIT_UPLOAD_FAILED: { kind: 'system', userMessage: 'the session recording could not be uploaded yet' },
  AUDIT_SPOOL_IN_USE: { kind: 'system', userMessage: 'the recording spool is used by another gateway' },
  AUDIT_UPLOAD_BACKLOG: { kind: 'system', userMessage: 'session recordings are waiting to be uploaded' },
  RECORDING_NOT_FOUND: { kind: 'user', userMessage: 'the recording does not exist' },
  RECORDING_INVALID: { kind: 'user', userMessage: 'the recording is damaged or was modified' },
  // Operator listener (metrics.*, health.*)
  OPERATOR_LISTEN_FAILED: { kind: 'system', userMessage: 'the gateway\'s metrics or health listener could not start' },
  // SSH user certificates (src/auth/ssh-ca.ts)
  CERT_INVALID: { kind: 'user', userMessage: 'the SSH certificate is malformed or its signature is invalid' },
  CERT_UNTRUSTED_CA: { kind: 'user', userMessage: 'the SSH certificate is not signed by a trusted CA' },
  CERT_EXPIRED: { kind: 'user', userMessage: 'the SSH certificate has expired' },
  CERT_NOT_YET_VALID: { kind: 'user', userMessage: 'the SSH certificate is not valid yet; check the clocks' },
  CERT_PRINCIPAL_MISMATCH: { kind: 'user', userMessage: 'the SSH certificate does not list this user name as a principal' },
  CERT_REVOKED: { kind: 'user', userMessage: 'the SSH certificate or key has been revoked' },
  CERT_SOURCE_ADDRESS: { kind: 'user', userMessage: 'the SSH certificate may not be used from this address' },
  CERT_OPTION_UNSUPPORTED: { kind: 'user', userMessage: 'the SSH certificate has a critical option the gateway does not understand' },
  CERT_NOT_USER: { kind: 'user', userMessage: 'the SSH certificate is not a user certificate' },
  // Kubernetes backend (src/backend/kubernetes)
  POD_UNSCHEDULABLE: { kind: 'system', userMessage: 'no cluster node can run the container right now; try again later' },
  BACKEND_FORBIDDEN: { kind: 'system', userMessage: 'the gateway is not allowed to start containers; tell the operator' },
  // SSH proxy backend (src/backend/sshproxy)
  UPSTREAM_HOST_KEY_REJECTED: { kind: 'system', userMessage: "the upstream SSH server's host key is not trusted; tell the operator" },
  UPSTREAM_AUTH_FAILED: { kind: 'system', userMessage: 'the gateway could not log in to the upstream SSH server; tell the operator' },
  // Authorization step and failed-login limits (src/auth/authz.ts, src/ssh/auth-rate-limit.ts)
  AUTHZ_DENIED: { kind: 'user', userMessage: 'this login is not allowed (refused by the authorization service)' },
  AUTH_RATE_LIMITED: { kind: 'user', userMessage: 'too many failed logins from this address or for this user; try again later' },
  // Host certificates (src/ssh/host-certificates.ts)
  HOSTCERT_INVALID: { kind: 'system', userMessage: 'the gateway host certificate cannot be used' },
  // Config server (configserver.*, src/config/config-webhook.ts)
  CONFIG_SERVER_ERROR: { kind: 'system', userMessage: 'the configuration service is unavailable; try again later' },
  CONFIG_SERVER_BAD_RESPONSE: { kind: 'system', userMessage: 'the configuration service gave an invalid answer; tell the operator' },
  CONFIG_SERVER_INVALID: { kind: 'system', userMessage: 'the configuration for this connection is invalid; tell the operator' },
  // Port forwarding (src/ssh/forwarding.ts; BackendConnection.openTcp / listenTcp)
  FORWARDING_UNAVAILABLE: { kind: 'user', userMessage: 'port forwarding is not available for this connection' },
  FORWARD_TARGET_FAILED: { kind: 'user', userMessage: 'the forwarded connection could not be made inside the workload' },
  FORWARDING_FAILED: { kind: 'system', userMessage: 'port forwarding failed in the gateway; try again later' },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface AirlockErrorOptions {
  /** Overrides the registry's user line when a more specific one is safe to show. */
  readonly userMessage?: string;
  readonly cause?: unknown;
  /** Operator-facing fields for the log line (never secrets). */
  readonly details?: Record<string, unknown>;
}

export class AirlockError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly userMessage: string;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: AirlockErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AirlockError';
    this.code = code;
    this.kind = ERROR_CODES[code].kind;
    this.userMessage = options.userMessage ?? ERROR_CODES[code].userMessage;
    this.details = options.details ?? {};
  }
}

export function isAirlockError(err: unknown): err is AirlockError {
  return err instanceof AirlockError;
}

/** Wraps anything thrown into an AirlockError so callers can always read a code. */
export function toAirlockError(err: unknown, fallback: ErrorCode = 'INTERNAL'): AirlockError {
  if (err instanceof AirlockError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AirlockError(fallback, message, { cause: err });
}

/** The one line shown to an SSH user: message plus code so support can find the log line. */
export function userLine(err: AirlockError): string {
  return `airlock: ${err.userMessage} [${err.code}]`;
}
