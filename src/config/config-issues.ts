import type { z } from 'zod';
import { describeValue } from './value-parsers.js';
import { closestKey } from './spelling.js';
import { UNSUPPORTED_KEYS, UNSUPPORTED_SECTIONS, UNSUPPORTED_VALUES, type UnsupportedKey } from './unsupported-keys.js';

/**
 * Turns zod issues into one plain line per problem: "<dotted.key.path>: <what is wrong> — <fix>".
 * z.prettifyError prints zod's own wording ("Invalid input: expected ..."), which tells an operator
 * neither which YAML key nor what to write; these lines do. Values are echoed only for enums and
 * units, never for free text that could hold a secret.
 */

export interface ConfigProblem {
  /** Path of the offending key, as in the YAML document (an unknown key's own name included). */
  readonly path: readonly PropertyKey[];
  /** The full line: key path, problem, fix. */
  readonly text: string;
}

type Issue = z.core.$ZodIssue;

const PLAIN_SEGMENT = /^[A-Za-z_$][\w$-]*$/;

/** `docker.execution.container.labels["com.example/team"]`, `ssh.macs[2]`. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && PLAIN_SEGMENT.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** Dotted form used as the key of the unsupported-key tables. */
function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

interface DefLike {
  readonly type: string;
  readonly innerType?: z.core.$ZodType;
  readonly in?: z.core.$ZodType;
  readonly out?: z.core.$ZodType;
  readonly shape?: Readonly<Record<string, z.core.$ZodType>>;
  readonly valueType?: z.core.$ZodType;
  readonly element?: z.core.$ZodType;
}

function defOf(schema: z.core.$ZodType): DefLike {
  return schema._zod.def as unknown as DefLike;
}

/** Looks through wrappers (default, prefault, optional, preprocess/transform pipes) to the data schema. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let current = schema;
  for (let depth = 0; depth < 10; depth++) {
    const def = defOf(current);
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined && def.out !== undefined) {
      current = defOf(def.in).type === 'transform' ? def.out : def.in;
    } else return current;
  }
  return current;
}

/** The keys the schema knows for the object at `path`, for "did you mean" hints. */
export function knownKeysAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  let current = unwrap(schema);
  for (const segment of path) {
    const def = defOf(current);
    const next =
      def.type === 'object' ? def.shape?.[String(segment)] : def.type === 'record' ? def.valueType : def.type === 'array' ? def.element : undefined;
    if (next === undefined) return [];
    current = unwrap(next);
  }
  const def = defOf(current);
  return def.type === 'object' && def.shape !== undefined ? Object.keys(def.shape) : [];
}

function unsupportedLine(path: readonly PropertyKey[], entry: UnsupportedKey): string {
  return `${formatKeyPath(path)}: ${entry.why ?? 'not supported yet by this Airlock version'} — ${entry.fix ?? 'remove it'}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (key: value lines)',
  record: 'a mapping (key: value lines)',
};

function typeMessage(issue: Extract<Issue, { code: 'invalid_type' }>): string {
  const input = issue.input;
  if (input === undefined) return 'required — set it';
  if (input === null) return 'has no value — give it a value or remove the key';
  const expected = EXPECTED[issue.expected] ?? issue.expected;
  const got = describeValue(input);
  const quote = issue.expected === 'string' && (typeof input === 'number' || typeof input === 'boolean') ? ' — quote the value' : '';
  return `must be ${expected} (got ${got})${quote}`;
}

function sizeMessage(issue: Extract<Issue, { code: 'too_small' | 'too_big' }>): string {
  const small = issue.code === 'too_small';
  const limit = Number(small ? (issue as { minimum: number | bigint }).minimum : (issue as { maximum: number | bigint }).maximum);
  const got = typeof issue.input === 'number' ? ` (got ${issue.input})` : '';
  switch (issue.origin) {
    case 'string':
      if (small && limit === 1) return 'must not be empty';
      return small ? `must be at least ${limit} characters long` : `must be at most ${limit} characters long`;
    case 'array':
      return small ? `must list at least ${limit} item${limit === 1 ? '' : 's'}` : `must list at most ${limit} items`;
    default:
      if (small) return `${issue.inclusive === false ? 'must be greater than' : 'must be at least'} ${limit}${got}`;
      return `${issue.inclusive === false ? 'must be less than' : 'must be at most'} ${limit}${got}`;
  }
}

function enumMessage(issue: Extract<Issue, { code: 'invalid_value' }>): string {
  const allowed = issue.values.map(String);
  const got = describeValue(issue.input);
  if (allowed.length === 1) return `must be ${allowed[0]} (got ${got})`;
  return `must be one of ${allowed.join(', ')} (got ${got})`;
}

/** One ConfigProblem per offending key; `schema` is the one the issues came from (for hints). */
export function describeIssues(issues: readonly Issue[], schema: z.core.$ZodType): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (path: readonly PropertyKey[], message: string) =>
    problems.push({ path, text: `${formatKeyPath(path)}: ${message}` });

  for (const issue of issues) {
    const path = issue.path;
    switch (issue.code) {
      case 'unrecognized_keys': {
        for (const key of issue.keys) {
          const keyPath = [...path, key];
          const unsupported = path.length === 0 ? UNSUPPORTED_SECTIONS[key] : UNSUPPORTED_KEYS[dotted(keyPath)];
          if (unsupported !== undefined) {
            problems.push({ path: keyPath, text: unsupportedLine(keyPath, unsupported) });
            continue;
          }
          const meant = closestKey(key, knownKeysAt(schema, path));
          add(keyPath, `unknown key — remove it or check the spelling${meant === undefined ? '' : ` (did you mean "${meant}"?)`}`);
        }
        break;
      }
      case 'invalid_value': {
        const notYet = UNSUPPORTED_VALUES[dotted(path)];
        if (typeof issue.input === 'string' && notYet?.includes(issue.input)) {
          add(path, `"${issue.input}" is not supported yet by this Airlock version — use ${issue.values.map(String).join(' or ')}`);
        } else {
          add(path, enumMessage(issue));
        }
        break;
      }
      case 'invalid_type':
        add(path, typeMessage(issue));
        break;
      case 'too_small':
      case 'too_big':
        add(path, sizeMessage(issue));
        break;
      default:
        // custom (our refinements and parsers, already worded for operators), invalid_format
        // (every regex here carries its own message) and anything zod adds later.
        add(path, issue.message);
    }
  }
  return problems;
}
