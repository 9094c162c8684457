import { z } from 'zod';
import { parseDuration } from '../core/duration.js';

/**
 * Field-level parsers shared by the config schema: each accepts what an operator naturally writes
 * in YAML (ContainerSSH-style strings) and yields one canonical value, so code downstream never
 * re-parses units. Messages carry no key path: the issue formatter prefixes it.
 */

/** A short, secret-free description of a rejected value for "(got ...)" hints. */
export function describeValue(value: unknown): string {
  if (value === null) return 'an empty value';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
    return JSON.stringify(shown);
  }
  return `${typeof value} ${String(value)}`;
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
const COMPOUND_DURATION = /^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$/;

/**
 * "60s", "500ms", "2m", "1h", a plain number of milliseconds, and Go's compound form ("1m30s"),
 * because ContainerSSH configs are read by Go's time.ParseDuration and people copy them verbatim.
 */
export function durationToMs(value: string | number): number {
  if (typeof value === 'string' && COMPOUND_DURATION.test(value.trim())) {
    let total = 0;
    for (const part of value.trim().matchAll(DURATION_PART)) total += parseDuration(part[0]);
    return total;
  }
  return parseDuration(value);
}

const DURATION_HINT = 'a duration like 500ms, 10s, 5m, 1h or 1m30s, or a number of milliseconds';

export interface DurationRule {
  /** 0 is meaningful for this key (it disables the feature); otherwise 0 is refused. */
  readonly zeroDisables?: boolean;
  /** Smallest non-zero value that makes sense, in ms. */
  readonly minMs?: number;
}

/** Duration in, whole milliseconds out. */
export function durationMs(rule: DurationRule = {}) {
  return z.unknown().transform((value, ctx): number => {
    let ms: number;
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
      ms = Math.round(value);
    } else if (typeof value === 'string') {
      try {
        ms = durationToMs(value);
      } catch {
        ctx.addIssue({ code: 'custom', message: `must be ${DURATION_HINT} (got ${describeValue(value)})` });
        return z.NEVER;
      }
    } else {
      ctx.addIssue({ code: 'custom', message: `must be ${DURATION_HINT} (got ${describeValue(value)})` });
      return z.NEVER;
    }
    if (ms === 0 && rule.zeroDisables !== true) {
      ctx.addIssue({ code: 'custom', message: 'must be greater than 0' });
      return z.NEVER;
    }
    if (ms !== 0 && rule.minMs !== undefined && ms < rule.minMs) {
      const zero = rule.zeroDisables === true ? '0 (disabled) or ' : '';
      ctx.addIssue({ code: 'custom', message: `must be ${zero}at least ${rule.minMs}ms (got ${ms}ms)` });
      return z.NEVER;
    }
    return ms;
  });
}

const BYTE_SIZE = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i;
const BYTE_FACTORS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * Bytes from a number or "512m" / "1g" / "256MiB". Every unit is binary (k = 1024), the same rule
 * `docker run --memory` applies, so a value copied from a docker command line means the same here.
 */
export function parseByteSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new Error('must be a positive number of bytes');
    return Math.round(value);
  }
  const match = BYTE_SIZE.exec(value.trim());
  if (!match) throw new Error(`must be a size like 512m, 1g or 256MiB, or a number of bytes (got ${describeValue(value)})`);
  const bytes = Math.round(Number(match[1]) * (BYTE_FACTORS[(match[2] ?? '').toLowerCase()] ?? 1));
  if (bytes <= 0) throw new Error('must be greater than 0');
  return bytes;
}

export function byteSize() {
  return z.unknown().transform((value, ctx): number => {
    if (typeof value !== 'string' && typeof value !== 'number') {
      ctx.addIssue({ code: 'custom', message: `must be a size like 512m, 1g or 256MiB, or a number of bytes (got ${describeValue(value)})` });
      return z.NEVER;
    }
    try {
      return parseByteSize(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });
}

export interface ListenAddress {
  /** IP address or host name without IPv6 brackets. */
  readonly host: string;
  readonly port: number;
}

const LISTEN = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/;

/** Splits "host:port" / "[v6]:port" / ":port" (Go's "all interfaces" form, read as 0.0.0.0). */
export function parseListenAddress(listen: string): ListenAddress {
  const match = LISTEN.exec(listen.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new Error(`must be host:port with a port from 0 to 65535, e.g. 0.0.0.0:2222 (got ${describeValue(listen)})`);
  }
  const host = match[1] ?? (match[2] === '' || match[2] === undefined ? '0.0.0.0' : match[2]);
  return { host, port };
}

/** Listen address in, normalised "host:port" string out (IPv6 keeps its brackets). */
export function listenAddress() {
  return z.string().transform((value, ctx): string => {
    try {
      const { host, port } = parseListenAddress(value);
      return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });
}

export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

export function httpUrl() {
  return z.string().refine(isHttpUrl, { message: 'must be an http:// or https:// URL (e.g. http://auth:8080)' });
}

/** Plain assignment would treat a variable named "__proto__" as the prototype and drop it. */
function setOwn(target: Record<string, string>, name: string, value: string): void {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * A string map that also takes Docker's list form ["KEY=VALUE", ...] (what ContainerSSH users
 * write for `env`, copied from Docker's create body) and normalises it to a record.
 */
export function envMap() {
  return z.unknown().transform((value, ctx): Record<string, string> => {
    const out: Record<string, string> = {};
    if (Array.isArray(value)) {
      value.forEach((item: unknown, index) => {
        const eq = typeof item === 'string' ? item.indexOf('=') : -1;
        if (typeof item !== 'string' || eq <= 0) {
          ctx.addIssue({
            code: 'custom',
            path: [index],
            message: `must be "NAME=value" (got ${describeValue(item)}) — or write env as a mapping of NAME: value`,
          });
          return;
        }
        const name = item.slice(0, eq);
        if (Object.hasOwn(out, name)) {
          ctx.addIssue({ code: 'custom', path: [index], message: `${name} is set twice — keep one entry` });
          return;
        }
        setOwn(out, name, item.slice(eq + 1));
      });
      return out;
    }
    if (value === null || typeof value !== 'object') {
      ctx.addIssue({ code: 'custom', message: `must be a mapping of NAME: value or a list of "NAME=value" (got ${describeValue(value)})` });
      return z.NEVER;
    }
    for (const [name, v] of Object.entries(value)) {
      if (name === '' || name.includes('=')) {
        ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid variable name (empty or contains "=")' });
      } else if (typeof v !== 'string') {
        // Refuse numbers instead of stringifying them: YAML reads VERSION: 1.10 as 1.1.
        ctx.addIssue({ code: 'custom', path: [name], message: `must be a string (got ${describeValue(v)}) — quote the value` });
      } else {
        setOwn(out, name, v);
      }
    }
    return out;
  });
}
