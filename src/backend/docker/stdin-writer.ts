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
export function createStdinWriter(target: Duplex, halfClose: boolean): Writable {
  const gone = () => target.destroyed || target.writableEnded;
  return new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      if (gone()) return callback();
      if (target.write(chunk)) return callback();
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
