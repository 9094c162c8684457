import { createRequire } from 'node:module';
import type { Connection } from 'ssh2';

/**
 * Sends SSH_MSG_USERAUTH_BANNER (RFC 4252 §5.4) during authentication. A server may send it at
 * any time before auth succeeds and OpenSSH prints it on stderr, which is the only way to give a
 * rejected user one clear line ("the authentication service is unavailable") instead of a bare
 * "Permission denied". ssh2 only sends its static banner at service accept and exposes no API for
 * this, so this file builds the packet with ssh2's own packet writer — the one place that
 * touches ssh2 internals; if they change, the banner is skipped, never the rejection.
 */
const require = createRequire(import.meta.url);

interface PacketWriter {
  allocStart: number;
  alloc(size: number): Buffer;
  finalize(packet: Buffer): Buffer;
}
interface ProtocolInternals {
  _packetRW?: { write?: PacketWriter };
}
type SendPacket = (proto: ProtocolInternals, packet: Buffer) => void;

const USERAUTH_BANNER = 53;

let sendPacket: SendPacket | undefined;
try {
  const utils = require('ssh2/lib/protocol/utils.js') as { sendPacket?: SendPacket };
  sendPacket = utils.sendPacket;
} catch {
  sendPacket = undefined;
}

export function sendAuthBanner(client: Connection, text: string): boolean {
  const proto = (client as unknown as { _protocol?: ProtocolInternals })._protocol;
  const writer = proto?._packetRW?.write;
  if (!proto || !writer || !sendPacket) return false;
  const message = text.endsWith('\n') ? text : text + '\r\n';
  const len = Buffer.byteLength(message);
  const start = writer.allocStart;
  const packet = writer.alloc(1 + 4 + len + 4);
  packet[start] = USERAUTH_BANNER;
  packet.writeUInt32BE(len, start + 1);
  packet.write(message, start + 5, len, 'utf8');
  packet.writeUInt32BE(0, start + 5 + len); // empty language tag
  sendPacket(proto, writer.finalize(packet));
  return true;
}
