import { createReadStream, existsSync, statSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { AirlockError } from '../core/errors.js';
import { parseS3Url } from './storage/s3-client.js';

/**
 * Read access to one stored recording, wherever it is: a local recording directory, a single
 * local file (.airlock or .cast), or an `s3://bucket/prefix/` holding the recording's objects.
 */
export interface RecordingSource {
  readonly location: string;
  /** File names of the recording. */
  list(): Promise<string[]>;
  read(name: string): Promise<Buffer>;
  stream(name: string): Promise<Readable>;
}

export function localSource(path: string): RecordingSource {
  if (!existsSync(path)) throw new AirlockError('RECORDING_NOT_FOUND', `${path} does not exist`);
  if (statSync(path).isDirectory()) {
    return {
      location: path,
      list: async () => (await readdir(path, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort(),
      read: (name) => readFile(join(path, name)),
      stream: async (name) => createReadStream(join(path, name)),
    };
  }
  const dir = dirname(path);
  const only = basename(path);
  const check = (name: string) => {
    if (name !== only) throw new AirlockError('RECORDING_NOT_FOUND', `${join(dir, name)} is not part of this recording`);
  };
  return {
    location: path,
    list: async () => [only],
    read: async (name) => {
      check(name);
      return readFile(path);
    },
    stream: async (name) => {
      check(name);
      return createReadStream(path);
    },
  };
}

export function s3Source(client: S3Client, url: string): RecordingSource {
  const { bucket } = parseS3Url(url);
  let { prefix } = parseS3Url(url);
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  const get = async (name: string) => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: prefix + name })).catch((err: unknown) => {
      const e = err as { name?: string };
      if (e.name === 'NoSuchKey' || e.name === 'NotFound') throw new AirlockError('RECORDING_NOT_FOUND', `s3://${bucket}/${prefix}${name} does not exist`, { cause: err });
      throw err;
    });
    if (!out.Body) throw new AirlockError('RECORDING_NOT_FOUND', `s3://${bucket}/${prefix}${name} is empty`);
    return out.Body as Readable;
  };
  return {
    location: `s3://${bucket}/${prefix}`,
    async list() {
      const names: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ...(token ? { ContinuationToken: token } : {}) }));
        for (const o of page.Contents ?? []) if (o.Key) names.push(o.Key.slice(prefix.length));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return names.sort();
    },
    async read(name) {
      const body = await get(name);
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(Buffer.from(c as Uint8Array));
      return Buffer.concat(chunks);
    },
    stream: get,
  };
}

export function isS3Url(ref: string): boolean {
  return ref.startsWith('s3://');
}

/** Reads a whole stream (the SDK's body or a file stream). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

export { Readable };
