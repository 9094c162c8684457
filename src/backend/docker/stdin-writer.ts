import { Writable, type Duplex } from 'node:stream';

/**
 * The program's stdin: forwards to the hijacked Engine stream with its backpressure, and turns
 * `end()` into a half-close of that stream — the Engine then closes the program's stdin (EOF)
 * while its output keeps flowing. Destroying this writable does not touch the Engine stream
 * (the output may still be draining). Writes after the stream closed are dropped, as OpenSSH
 * drops data for a program that has exited.
 *
 * With a TTY, EOF is not passed on (`halfClose` false): the Engine tears down a TTY exec's whole
 * stream on a half-close, losing the output, and OpenSSH does not forward EOF into a pty either
 * (the program sees EOF when the user types ^D).
 */
/**
 * Bytes the Engine socket may hold before a write waits for 'drain'. The socket's own mark is
 * 16 KiB — less than one SSH packet (32 KiB) — so waiting on it costs an event-loop round trip
 * per packet on a bulk upload; a few packets of slack keep the kernel's send buffer full.
 */
const SOCKET_SLACK = 256 * 1024;

export function createStdinWriter(target: Duplex, halfClose: boolean): Writable {
  const gone = () => target.destroyed || target.writableEnded;
  return new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      if (gone()) return callback();
      if (target.write(chunk) || target.writableLength < SOCKET_SLACK) return callback();
      const done = () => {
        target.off('drain', done);
        target.off('close', done);
        callback();
      };
      target.on('drain', done);
      target.on('close', done);
    },
    final(callback) {
      if (halfClose && !gone()) target.end();
      callback();
    },
    destroy(err, callback) {
      callback(err);
    },
  });
}
