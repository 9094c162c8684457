import { createHash } from 'node:crypto';
import { open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { MetadataMap } from '../backend/backend.js';

/**
 * manifest.json: written last when a recording is sealed (its presence means "sealed") and
 * uploaded last (its presence in storage means "every file is there"). It lists every file with
 * size, SHA-256 and message chain, and a digest over that list: `audit verify` recomputes all.
 */
export const MANIFEST_FILE = 'manifest.json';
/** What is known about a recording while it runs; recovery builds the manifest from it. */
export const STATE_FILE = 'state.json';

const fileEntrySchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9._-]+$/),
  kind: z.enum(['binary', 'asciicast', 'commands']),
  bytes: z.number().int().nonnegative(),
  /** SHA-256 of the file's exact bytes: binary files (their gzip framing is outside the chain). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  messages: z.number().int().nonnegative(),
  chain: z.string().regex(/^[0-9a-f]{64}$/),
});

const channelEntrySchema = z.object({
  channelId: z.number().int().nonnegative(),
  kind: z.enum(['shell', 'exec', 'subsystem']),
  command: z.string().optional(),
  pty: z.object({ term: z.string(), cols: z.number(), rows: z.number() }).optional(),
  exit: z.object({ status: z.number().optional(), signal: z.string().optional() }).optional(),
  cast: z.string().optional(),
});

const identitySchema = z.object({
  username: z.string(),
  loginUsername: z.string(),
  clientVersion: z.string(),
  /** Non-sensitive auth metadata only (sensitive values are never written anywhere). */
  metadata: z.record(z.string(), z.string()),
});

export const manifestSchema = z.object({
  airlockRecording: z.literal(1),
  connectionId: z.string().regex(/^[A-Za-z0-9_-]+$/),
  remoteAddress: z.string(),
  startedAt: z.string(),
  endedAt: z.string(),
  identity: identitySchema.optional(),
  complete: z.boolean(),
  incompleteReason: z.string().optional(),
  dropped: z.object({ messages: z.number(), bytes: z.number() }),
  channels: z.array(channelEntrySchema),
  files: z.array(fileEntrySchema),
  digest: z.string().regex(/^[0-9a-f]{64}$/),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type FileEntry = z.infer<typeof fileEntrySchema>;
export type ChannelEntry = z.infer<typeof channelEntrySchema>;
export type Identity = z.infer<typeof identitySchema>;

export const stateSchema = z.object({
  connectionId: z.string().regex(/^[A-Za-z0-9_-]+$/),
  remoteAddress: z.string(),
  startedAt: z.string(),
  identity: identitySchema.optional(),
  /** The formats asked for when the recording started (recovery honours them). */
  formats: z.object({ binary: z.boolean(), asciicast: z.boolean() }).optional(),
});
export type RecordingState = z.infer<typeof stateSchema>;

/** Non-sensitive metadata values; sensitive ones are dropped here, before anything is written. */
export function publicMetadata(metadata: MetadataMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(metadata)) {
    if (!v.sensitive) Object.defineProperty(out, key, { value: v.value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * The recording digest: SHA-256 over "complete|dropped" and one line per file
 * (name, size, SHA-256, chain). It is logged at seal time and stored as object metadata, so a
 * copy can be checked against a value kept outside the recording.
 */
export function recordingDigest(m: Pick<Manifest, 'connectionId' | 'complete' | 'files'>): string {
  const h = createHash('sha256');
  h.update(`airlock recording v1\n${m.connectionId}\n${m.complete ? 'complete' : 'incomplete'}\n`);
  for (const f of m.files) h.update(`${f.name} ${f.kind} ${f.bytes} ${f.sha256 ?? '-'} ${f.messages} ${f.chain}\n`);
  return h.digest('hex');
}

/** Writes JSON durably: temp file, fsync, rename, fsync of the directory. */
export async function writeJsonDurably(dir: string, name: string, value: unknown): Promise<void> {
  const tmp = join(dir, `.${name}.tmp`);
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  const fh = await open(tmp, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export function parseManifest(text: string, source: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${source} is not JSON`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${source} is not an Airlock recording manifest: ${z.prettifyError(parsed.error).split('\n')[0] ?? ''}`);
  return parsed.data;
}

export async function readManifest(dir: string): Promise<Manifest> {
  return parseManifest(await readFile(join(dir, MANIFEST_FILE), 'utf8'), join(dir, MANIFEST_FILE));
}
