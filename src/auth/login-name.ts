import { createHash } from 'node:crypto';

/**
 * Three base64url segments: the shape of a JWT, which CI-debug logins use as the SSH user name.
 * The signature may be empty, as the token provider allows (an `alg: none` token is refused
 * there with a reason; it is kept out of logs like any other token-shaped name).
 */
const JWT_SHAPE = /^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*$/;

/**
 * The login name as it may appear in logs, audit events and labels. A token used as the user
 * name (`ssh <token>@gateway`) is a credential and is replaced by a short digest that still lets
 * an operator correlate attempts.
 */
export function loggableLoginName(loginName: string): string {
  if (!JWT_SHAPE.test(loginName)) return loginName;
  return `token:sha256:${createHash('sha256').update(loginName).digest('hex').slice(0, 12)}`;
}
