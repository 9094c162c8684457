/**
 * The value maps (`metadata`, `environment`, `files`) that auth and config webhooks hand over,
 * and how answers combine. Airlock follows ContainerSSH 0.6: key by key (new keys added, same
 * keys overwritten, an absent map keeps what was collected) — not 0.5's wholesale replacement,
 * where an absent map wiped earlier content.
 */
import { z } from 'zod';
import type { MetadataMap, MetadataValue } from '../backend/backend.js';

/** One entry on the wire: `{"value": "...", "sensitive": bool}`; `sensitive` defaults to false. */
export const metadataValueSchema = z
  .looseObject({ value: z.string(), sensitive: z.boolean().optional() })
  .transform((v): MetadataValue => ({ value: v.value, sensitive: v.sensitive ?? false }));

/**
 * A webhook value map `{KEY: {value, sensitive?}}`. Go webhooks send `null` for an empty map
 * (a nil map marshals to null), so null reads as "absent".
 */
export const valueMapSchema = z
  .record(z.string(), metadataValueSchema)
  .nullish()
  .transform((m): MetadataMap | undefined => (m == null ? undefined : Object.fromEntries(Object.entries(m))));

/** `files` map: the value is base64 file content (kept as the base64 string). */
export const filesMapSchema = z
  .record(
    z.string().min(1),
    metadataValueSchema.refine((v) => /^[A-Za-z0-9+/]*={0,2}$/.test(v.value) && v.value.length % 4 === 0, {
      message: 'file content must be base64',
    }),
  )
  .nullish()
  .transform((m): MetadataMap | undefined => (m == null ? undefined : Object.fromEntries(Object.entries(m))));

/** 0.6 key-by-key merge: `later` wins per key; an absent `later` keeps `earlier` unchanged. */
export function mergeMaps(earlier: MetadataMap | undefined, later: MetadataMap | undefined): MetadataMap {
  // Object.fromEntries defines own properties, so a key like "__proto__" stays plain data.
  return Object.fromEntries([...Object.entries(earlier ?? {}), ...Object.entries(later ?? {})]);
}

/** What may be forwarded to a later webhook: everything not marked sensitive. */
export function withoutSensitive(map: MetadataMap | undefined): MetadataMap {
  return Object.fromEntries(Object.entries(map ?? {}).filter(([, v]) => !v.sensitive));
}
