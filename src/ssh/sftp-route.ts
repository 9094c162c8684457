import type { Logger } from 'pino';
import type { BackendConnection } from '../backend/backend.js';
import { toAirlockError } from '../core/errors.js';
import type { SessionPolicy } from './policy.js';

/**
 * Who serves an "sftp" subsystem request on a session channel: the workload's own sftp-server
 * (raw bytes piped to the configured program, exact and fast) or the gateway (ssh2's SFTP
 * server over the backend's file API) when the workload has no such program.
 *
 * It must be known before the channel is accepted: ssh2 (lib/server.js, CHANNEL_REQUEST
 * "subsystem") hands an "sftp" request to an `sftp` listener as parsed SFTP if one is
 * registered at that moment, else to the `subsystem` listener as a raw channel — there is no
 * changing course once the request is in. So the session channel waits for this answer (the
 * workload, which the first program needs anyway, plus one cached probe per image) before it
 * confirms the channel open.
 *
 * The workload serves it whenever policy would not run the sftp subsystem as such (denied, or a
 * forced command replaces it — the subsystem path then shows the refusal or runs the command),
 * when the workload could not be created (the request then reports that), when the backend has
 * no file API (Kubernetes, SSH proxy: passthrough only), or when the probe fails.
 */
export type SftpServer = 'workload' | 'gateway';

export async function chooseSftpServer(workload: () => Promise<BackendConnection>, policy: SessionPolicy, logger: Logger): Promise<SftpServer> {
  const decision = policy.program('subsystem', 'sftp');
  if (!decision.allowed || decision.kind !== 'subsystem') return 'workload';
  let conn: BackendConnection;
  try {
    conn = await workload();
  } catch {
    return 'workload';
  }
  if (!conn.openFiles || !conn.hasSubsystem) return 'workload';
  try {
    return (await conn.hasSubsystem('sftp')) ? 'workload' : 'gateway';
  } catch (err) {
    const e = toAirlockError(err, 'EXEC_FAILED');
    logger.warn({ code: e.code, err: e }, 'could not tell whether the workload has an sftp-server; passing sftp through');
    return 'workload';
  }
}
