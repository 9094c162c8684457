/** The provisioning API as CI calls it: `POST /v1/sessions` with a provisioning key. */
import assert from 'node:assert/strict';

/** The answer's fields the tests read (docs/ci-debugging.md has them all). */
export interface ProvisionedSession {
  readonly session_id: string;
  readonly token: string;
  readonly ssh_command: string;
  readonly ssh_host: string;
  readonly ssh_port: number;
  readonly expires_at: number;
  readonly expires_at_human: string;
  readonly redacted_vars: string[];
}

/** Provisions a session at `api` (e.g. http://127.0.0.1:8080) and asserts 201. */
export async function provisionSession(api: string, key: string, body: Record<string, unknown>): Promise<ProvisionedSession> {
  const res = await fetch(`${api}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as ProvisionedSession;
  assert.equal(res.status, 201, JSON.stringify(json));
  return json;
}
