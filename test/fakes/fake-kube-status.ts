/**
 * Pieces of the fake Kubernetes API server that mirror the real server's wire shapes: metav1.Status
 * error bodies (what client-node turns into an ApiException), label/field selectors, and RFC 3339
 * timestamps. Part of a FAKE used only in tests; see fake-kube-apiserver.ts.
 */

export type Json = Record<string, unknown>;

export interface StatusCause {
  readonly reason?: string;
  readonly message: string;
  readonly field?: string;
}

/** A metav1.Status body as the API server writes it for a failed request. */
export function statusBody(
  code: number,
  reason: string,
  message: string,
  details?: { name?: string; kind?: string; causes?: readonly StatusCause[] },
): Json {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

export const notFound = (kind: string, name: string): Json => statusBody(404, 'NotFound', `${kind} "${name}" not found`, { name, kind });
export const alreadyExists = (name: string): Json =>
  statusBody(409, 'AlreadyExists', `pods "${name}" already exists`, { name, kind: 'pods' });
export const unauthorized = (): Json => statusBody(401, 'Unauthorized', 'Unauthorized');
export const badRequest = (message: string): Json => statusBody(400, 'BadRequest', message);
export function forbidden(verb: string, resource: string, namespace: string, name?: string): Json {
  return statusBody(
    403,
    'Forbidden',
    `${resource}${name ? ` "${name}"` : ''} is forbidden: User "system:serviceaccount:airlock:airlock" cannot ${verb} resource "${resource.split('/')[0]}"${
      resource.includes('/') ? ` subresource "${resource.split('/')[1]}"` : ''
    } in API group "" in the namespace "${namespace}"`,
    { ...(name ? { name } : {}), kind: resource.split('/')[0] },
  );
}
export function invalid(name: string, causes: readonly StatusCause[]): Json {
  const summary = causes.map((c) => `${c.field ?? ''}: ${c.message}`).join(', ');
  return statusBody(422, 'Invalid', `Pod "${name}" is invalid: ${summary}`, { name, kind: 'Pod', causes });
}

/** RFC 3339 at second precision, like metav1.Time. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

// ---- selectors ----------------------------------------------------------------------------

type Requirement =
  | { op: 'eq' | 'ne'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'absent'; key: string };

/** Parses a label selector (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`); throws on syntax it cannot read. */
export function parseLabelSelector(selector: string): Requirement[] {
  const out: Requirement[] = [];
  // Split on commas outside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  if (current.trim() !== '') parts.push(current);
  for (const raw of parts) {
    const part = raw.trim();
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      out.push({ op: m[2] as 'in' | 'notin', key: m[1]!, values: m[3]!.split(',').map((v) => v.trim()) });
    } else if ((m = part.match(/^([^\s!=]+)\s*(==|=|!=)\s*(\S*)$/))) {
      out.push({ op: m[2] === '!=' ? 'ne' : 'eq', key: m[1]!, value: m[3]! });
    } else if ((m = part.match(/^!([^\s!=]+)$/))) {
      out.push({ op: 'absent', key: m[1]! });
    } else if ((m = part.match(/^([^\s!=]+)$/))) {
      out.push({ op: 'exists', key: m[1]! });
    } else {
      throw new Error(`unable to parse requirement: ${part}`);
    }
  }
  return out;
}

export function matchesLabels(requirements: readonly Requirement[], labels: Readonly<Record<string, string>>): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const value = labels[r.key];
    switch (r.op) {
      case 'eq':
        return value === r.value;
      case 'ne':
        return value !== r.value;
      case 'in':
        return has && r.values.includes(value!);
      case 'notin':
        return !has || !r.values.includes(value!);
      case 'exists':
        return has;
      case 'absent':
        return !has;
    }
  });
}

/** The field selectors the real server supports for pods that this fake implements. */
const POD_FIELDS: Readonly<Record<string, (pod: Json) => string>> = {
  'metadata.name': (p) => String((p['metadata'] as Json)['name']),
  'metadata.namespace': (p) => String((p['metadata'] as Json)['namespace']),
  'status.phase': (p) => String((p['status'] as Json)['phase']),
  'spec.nodeName': (p) => String((p['spec'] as Json)['nodeName'] ?? ''),
};

export function parseFieldSelector(selector: string): Array<{ field: string; op: 'eq' | 'ne'; value: string }> {
  return selector
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((part) => {
      const m = part.trim().match(/^([^!=]+)(==|=|!=)(.*)$/);
      if (!m || !POD_FIELDS[m[1]!]) throw new Error(`"${part}" is not a known field selector: only "metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"`);
      return { field: m[1]!, op: m[2] === '!=' ? 'ne' : 'eq', value: m[3]! } as const;
    });
}

export function matchesFields(requirements: ReturnType<typeof parseFieldSelector>, pod: Json): boolean {
  return requirements.every((r) => (POD_FIELDS[r.field]!(pod) === r.value) === (r.op === 'eq'));
}
