import { createWriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger, Level } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: Level;
  /** `ljson`: one JSON object per line (ContainerSSH's name); `text`: human-readable lines. */
  readonly format: 'ljson' | 'text';
  readonly destination: 'stdout' | 'stderr' | 'file';
  readonly file?: string;
}

/**
 * Paths and keys that must never reach a log line, whatever a caller passes by mistake.
 * pino's redaction is the last line of defence; code must not log secrets in the first place.
 */
const REDACT = ['password', 'passwordBase64', 'token', '*.password', '*.passwordBase64', '*.token', 'authorization', '*.authorization'];

export function createLogger(options: LoggerOptions, sink?: NodeJS.WritableStream): Logger {
  const target: NodeJS.WritableStream =
    sink ??
    (options.destination === 'file' && options.file
      ? createWriteStream(options.file, { flags: 'a' })
      : options.destination === 'stderr'
        ? process.stderr
        : process.stdout);
  // A log reader that goes away (`airlock serve | tee` interrupted, a closed pipe) must not take
  // the gateway down with EPIPE: lose the log lines, keep serving and cleaning up.
  if (target === process.stdout || target === process.stderr) (target as NodeJS.WriteStream).on('error', () => undefined);
  const stream = options.format === 'text' ? textStream(target) : target;
  return pino(
    {
      level: options.level,
      base: { app: 'airlock' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

/** Re-renders pino's JSON lines as `time LEVEL msg key=value ...` for people reading a terminal. */
function textStream(target: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        try {
          const record = JSON.parse(line) as Record<string, unknown>;
          const { time, level, msg, app: _app, ...rest } = record;
          const fields = Object.entries(rest)
            .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join(' ');
          target.write(`${String(time)} ${String(level).toUpperCase()} ${String(msg ?? '')}${fields ? ' ' + fields : ''}\n`);
        } catch {
          target.write(line + '\n');
        }
      }
      done();
    },
  });
}
