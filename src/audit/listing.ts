import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { MANIFEST_FILE, parseManifest, type Manifest } from './manifest.js';
import { parseS3Url } from './storage/s3-client.js';
import { readAll } from './source.js';
import type { Readable } from 'node:stream';

export interface ListFilter {
  /** Commit SHA or a prefix of it (metadata commit_sha or commit). */
  readonly commit?: string;
  /** PR number (metadata pr_number or pr); a leading "#" is ignored. */
  readonly pr?: string;
  /** metadata actor, or the authenticated user name. */
  readonly actor?: string;
  readonly session?: string;
  readonly user?: string;
  /** Exact metadata matches. */
  readonly meta?: Readonly<Record<string, string>>;
  readonly since?: Date;
  readonly until?: Date;
}

export interface ListedRecording {
  readonly location: string;
  readonly manifest: Manifest;
}

export function matchesFilter(m: Manifest, f: ListFilter): boolean {
  const md = m.identity?.metadata ?? {};
  const get = (...keys: string[]) => keys.map((k) => (Object.hasOwn(md, k) ? md[k] : undefined)).find((v) => v !== undefined);
  if (f.commit !== undefined) {
    const c = get('commit_sha', 'commit');
    if (c === undefined || !c.startsWith(f.commit)) return false;
  }
  if (f.pr !== undefined && get('pr_number', 'pr') !== f.pr.replace(/^#/, '')) return false;
  if (f.actor !== undefined && get('actor') !== f.actor && m.identity?.username !== f.actor) return false;
  if (f.session !== undefined && get('session_id') !== f.session) return false;
  if (f.user !== undefined && m.identity?.username !== f.user) return false;
  for (const [k, v] of Object.entries(f.meta ?? {})) if (get(k) !== v) return false;
  const started = Date.parse(m.startedAt);
  if (f.since && started < f.since.getTime()) return false;
  if (f.until && started > f.until.getTime()) return false;
  return true;
}

/** Recordings under a local storage directory (any depth up to 6; the spool is skipped). */
export async function listLocal(root: string, depth = 6): Promise<ListedRecording[]> {
  const out: ListedRecording[] = [];
  const walk = async (dir: string, left: number) => {
    if (existsSync(join(dir, MANIFEST_FILE))) {
      try {
        out.push({ location: dir, manifest: parseManifest(await readFile(join(dir, MANIFEST_FILE), 'utf8'), join(dir, MANIFEST_FILE)) });
      } catch {
        // Not a recording manifest: not listed (`audit verify` explains why).
      }
      return;
    }
    if (left === 0) return;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory() && !e.name.startsWith('.')) await walk(join(dir, e.name), left - 1);
    }
  };
  await walk(root, depth);
  return out;
}

/** Recordings under an s3://bucket/prefix: every manifest.json object below it. */
export async function listS3(client: S3Client, url: string): Promise<ListedRecording[]> {
  const { bucket, prefix } = parseS3Url(url);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of page.Contents ?? []) if (o.Key && (o.Key === MANIFEST_FILE || o.Key.endsWith(`/${MANIFEST_FILE}`))) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const out: ListedRecording[] = [];
  for (const key of keys) {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    try {
      const manifest = parseManifest((await readAll(res.Body as Readable)).toString('utf8'), key);
      out.push({ location: `s3://${bucket}/${key.slice(0, -MANIFEST_FILE.length)}`, manifest });
    } catch {
      // Skip objects that only look like manifests.
    }
  }
  return out;
}

export function sortByStart(list: ListedRecording[]): ListedRecording[] {
  return [...list].sort((a, b) => a.manifest.startedAt.localeCompare(b.manifest.startedAt));
}

function duration(m: Manifest): string {
  const ms = Date.parse(m.endedAt) - Date.parse(m.startedAt);
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One table row per recording. */
export function formatListing(list: readonly ListedRecording[]): string[] {
  const rows = list.map(({ location, manifest: m }) => {
    const md = m.identity?.metadata ?? {};
    return [
      m.startedAt.replace(/\.\d+Z$/, 'Z'),
      duration(m),
      m.identity?.username ?? '-',
      m.complete ? 'complete' : 'INCOMPLETE',
      (md['commit_sha'] ?? md['commit'] ?? '-').slice(0, 12),
      md['pr_number'] ?? md['pr'] ?? '-',
      String(m.channels.length),
      location,
    ];
  });
  const header = ['STARTED', 'DURATION', 'USER', 'STATUS', 'COMMIT', 'PR', 'CH', 'LOCATION'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '));
}
