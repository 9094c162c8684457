import { randomBytes } from 'node:crypto';

/** Opaque hex id, like ContainerSSH's connectionId (webhooks receive it verbatim). */
export function newConnectionId(): string {
  return randomBytes(16).toString('hex');
}

/** Short id of this gateway process, used in container labels so a reaper can tell owners apart. */
export function newGatewayId(): string {
  return randomBytes(8).toString('hex');
}
