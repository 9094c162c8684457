import type { Manifest } from './manifest.js';

/**
 * Renders `audit.s3.keyTemplate` (e.g. "{{metadata.commit_sha}}/{{connectionId}}/") into the key
 * prefix of a recording. Placeholders: connectionId, username, date (UTC YYYY-MM-DD of the start)
 * and metadata.NAME (non-sensitive auth metadata; sensitive values never reach the manifest).
 * Each value is made safe for a key segment: no "/", no "..", only [A-Za-z0-9._=+@-].
 */
const PLACEHOLDER = /\{\{\s*([^}]*?)\s*\}\}/g;
const MISSING = 'unknown';

export function safeSegment(value: string | undefined): string {
  if (value === undefined || value === '') return MISSING;
  const cleaned = value.replace(/[^A-Za-z0-9._=+@-]/g, '_').replace(/\.{2,}/g, '_').slice(0, 200);
  return cleaned === '' || cleaned === '.' ? MISSING : cleaned;
}

export function renderKeyTemplate(template: string, manifest: Pick<Manifest, 'connectionId' | 'startedAt' | 'identity'>): string {
  const rendered = template.replace(PLACEHOLDER, (_all, name: string) => {
    if (name === 'connectionId') return safeSegment(manifest.connectionId);
    if (name === 'username') return safeSegment(manifest.identity?.username);
    if (name === 'date') return safeSegment(manifest.startedAt.slice(0, 10));
    if (name.startsWith('metadata.')) {
      const key = name.slice('metadata.'.length);
      const metadata = manifest.identity?.metadata ?? {};
      return safeSegment(Object.hasOwn(metadata, key) ? metadata[key] : undefined);
    }
    throw new Error(`unknown key template placeholder {{${name}}}`);
  });
  const trimmed = rendered.replace(/^\/+/, '').replace(/\/{2,}/g, '/');
  return trimmed.endsWith('/') ? trimmed : `${trimmed}/`;
}
