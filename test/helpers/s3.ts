/**
 * A real S3 server for tests: s3rver 3.7 run as a CHILD PROCESS on 127.0.0.1 (port 0 at first,
 * the same port after a restart) with a temp data directory. An outage is `stop()`; `start()`
 * brings it back on the same port with the same data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import {
  CreateBucketCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/audit/storage/s3-client.js';
import { tempDir } from './tmp.js';

const S3RVER = resolve(import.meta.dirname, '../../node_modules/s3rver/bin/s3rver.js');

/** s3rver accepts any well-formed signature; these are its documented defaults. */
export const S3_ACCESS_KEY = 'S3RVER';
export const S3_SECRET_KEY = 'S3RVER';

export interface TestS3 {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly bucket: string;
  readonly client: S3Client;
  readonly running: boolean;
  /** s3rver's info messages so far, e.g. 'Stored part 2 of <uploadId> in bucket "recordings" successfully'. */
  readonly log: readonly string[];
  /** audit.s3 settings for a gateway config (spool dir given by the test). */
  auditConfig(local: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Outage: kills the server process (data stays). */
  stop(): Promise<void>;
  /** Restarts on the same port with the same data. */
  start(): Promise<void>;
  keys(prefix?: string): Promise<string[]>;
  get(key: string): Promise<Buffer>;
  tags(key: string): Promise<Record<string, string>>;
  metadata(key: string): Promise<Record<string, string>>;
  /** Stops the server and removes its data. */
  close(): Promise<void>;
}

async function launch(dir: string, port: number, log: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [S3RVER, '-d', dir, '-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const listening = await new Promise<number>((resolvePort, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      // eslint-disable-next-line no-control-regex
      const plain = line.replace(/\x1b\[[0-9;]*m/g, '');
      // e.g. 'info: Stored part 2 of <uploadId> in bucket "recordings" successfully'
      if (plain.startsWith('info: ')) log.push(plain.slice(6));
      output += plain + '\n';
      const m = /listening on [\d.]+:(\d+)/.exec(plain);
      if (m) resolvePort(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening:\n${output}`)));
  });
  return { child, port: listening };
}

export async function startS3(bucket = 'recordings'): Promise<TestS3> {
  const data = await tempDir('airlock-s3rver-');
  const log: string[] = [];
  let { child, port } = await launch(data.path, 0, log);
  let running = true;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = createS3Client({ region: 'us-east-1', endpoint, pathStyleAccess: true, accessKey: S3_ACCESS_KEY, secretKey: S3_SECRET_KEY });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));

  const stop = async () => {
    if (!running) return;
    running = false;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  };

  return {
    endpoint,
    bucket,
    client,
    get running() {
      return running;
    },
    log,
    auditConfig: (local, extra = {}) => ({
      local,
      bucket,
      endpoint,
      region: 'us-east-1',
      accessKey: S3_ACCESS_KEY,
      secretKey: S3_SECRET_KEY,
      pathStyleAccess: true,
      ...extra,
    }),
    stop,
    async start() {
      if (running) return;
      ({ child, port } = await launch(data.path, port, log));
      running = true;
    },
    async keys(prefix = '') {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
        for (const o of page.Contents ?? []) if (o.Key) out.push(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return out.sort();
    },
    async get(key) {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    },
    async tags(key) {
      const res = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
      return Object.fromEntries((res.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    },
    async metadata(key) {
      const res = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return res.Metadata ?? {};
    },
    async close() {
      await stop();
      client.destroy();
      await data.cleanup();
    },
  };
}
