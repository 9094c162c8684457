import type { Manifest } from './manifest.js';

/**
 * What a stored recording is labelled with, so a security team can find it by commit, PR,
 * actor or session: S3 object tags (max 10, key ≤ 128, value ≤ 256 characters) and user metadata
 * (x-amz-meta-*, ≤ 2 KB in total). Only non-sensitive metadata reaches the manifest, so only that
 * can appear here. The remote IP and the user name are included only when
 * `audit.s3.metadata.ip` / `.username` say so (ContainerSSH's keys).
 */
export interface LabelOptions {
  readonly ip: boolean;
  readonly username: boolean;
}

export interface Tag {
  readonly Key: string;
  readonly Value: string;
}

// The broker's names first (CI debugging: session, commit, PR, actor), then everything else.
const PREFERRED = ['session_id', 'commit_sha', 'pr_number', 'actor', 'repository', 'pipeline_run'];
const MAX_TAGS = 10;
const MAX_METADATA_BYTES = 2048;

function tagText(value: string, max: number): string {
  // S3 tag characters: letters, digits, spaces and + - = . _ : / @
  return value.replace(/[^\p{L}\p{N} +\-=._:/@]/gu, '_').slice(0, max);
}

function labels(manifest: Manifest, options: LabelOptions): Array<[string, string]> {
  const metadata = manifest.identity?.metadata ?? {};
  const value = (key: string): [string, string] => [key, metadata[key] ?? ''];
  const preferred = PREFERRED.filter((k) => Object.hasOwn(metadata, k)).map(value);
  const rest = Object.keys(metadata)
    .filter((k) => !PREFERRED.includes(k))
    .sort()
    .map(value);
  const identity: Array<[string, string]> = [];
  if (options.username && manifest.identity) identity.push(['airlock-username', manifest.identity.username]);
  if (options.ip) identity.push(['airlock-remote-ip', manifest.remoteAddress.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')]);
  return [['airlock-connection-id', manifest.connectionId], ['airlock-complete', String(manifest.complete)], ...preferred, ...identity, ...rest];
}

export function objectTags(manifest: Manifest, options: LabelOptions): Tag[] {
  const tags: Tag[] = [];
  const seen = new Set<string>();
  for (const [key, value] of labels(manifest, options)) {
    const Key = tagText(key, 128);
    if (Key === '' || seen.has(Key)) continue;
    seen.add(Key);
    tags.push({ Key, Value: tagText(value, 256) });
    if (tags.length === MAX_TAGS) break;
  }
  return tags;
}

export function objectMetadata(manifest: Manifest, options: LabelOptions): Record<string, string> {
  const out: Record<string, string> = { 'airlock-digest': manifest.digest };
  let size = 'airlock-digest'.length + manifest.digest.length;
  for (const [key, value] of labels(manifest, options)) {
    // Header names are case-insensitive tokens; values must be printable ASCII.
    const k = key.toLowerCase().replace(/[^a-z0-9-]/g, '-');
    const v = value.replace(/[^\x20-\x7e]/g, '_');
    if (Object.hasOwn(out, k)) continue;
    if (size + k.length + v.length > MAX_METADATA_BYTES) break;
    out[k] = v;
    size += k.length + v.length;
  }
  return out;
}
