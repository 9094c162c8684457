import * as k8s from '@kubernetes/client-node';
import type { KubernetesPodOptions } from './options.js';

/**
 * Checks the configured pod template once, when the backend is built.
 *
 * client-node serializes request bodies through its generated models, which silently DROP every
 * key they do not know — a misspelt `securityContext` or `resources` key would vanish on the way
 * to the API server and the pod would run without it. So every key of the template is checked
 * against the same models (their `attributeTypeMap`), and the template is refused with the key's
 * path. Also checked: what the backend relies on (a console container with an image, label
 * syntax, reserved `airlock.*` names, restartPolicy Never).
 */
interface Attribute {
  readonly baseName: string;
  readonly type: string;
}

const PRIMITIVES = new Set(['string', 'number', 'boolean', 'Date', 'any', 'object', 'IntOrString']);

function modelAttributes(type: string): readonly Attribute[] | undefined {
  const model = (k8s as unknown as Record<string, unknown>)[type];
  if (typeof model !== 'function') return undefined;
  const map = (model as { attributeTypeMap?: unknown }).attributeTypeMap;
  return Array.isArray(map) ? (map as Attribute[]) : undefined;
}

/** Paths of keys in `value` that the Kubernetes model `type` (e.g. "V1PodSpec") does not have. */
export function unknownFields(value: unknown, type: string, path: string): string[] {
  if (value === null || value === undefined || PRIMITIVES.has(type)) return [];
  const array = type.match(/^Array<(.+)>$/);
  if (array) return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`)) : [];
  const map = type.match(/^\{ \[key: string\]: (.+); \}$/);
  if (map) {
    if (typeof value !== 'object' || Array.isArray(value)) return [];
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`));
  }
  const attributes = modelAttributes(type);
  if (!attributes || typeof value !== 'object' || Array.isArray(value)) return [];
  const out: string[] = [];
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const attribute = attributes.find((a) => a.baseName === key);
    if (!attribute) out.push(`${path}.${key}`);
    else out.push(...unknownFields(v, attribute.type, `${path}.${key}`));
  }
  return out;
}

// k8s.io/apimachinery validation: qualified names and label values.
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function isQualifiedName(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && QUALIFIED_NAME.test(name);
}

export function isLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE.test(value);
}

/** Everything wrong with the template, one line per problem (empty = fine). */
export function checkPodTemplate(pod: KubernetesPodOptions): string[] {
  const problems: string[] = [];
  const base = 'kubernetes.pod';
  for (const path of unknownFields(pod.spec, 'V1PodSpec', `${base}.spec`)) {
    problems.push(`${path}: not a PodSpec field (client-node would drop it silently) — check the spelling against the Kubernetes API reference`);
  }
  const containers = pod.spec['containers'];
  if (!Array.isArray(containers) || containers.length === 0) {
    problems.push(`${base}.spec.containers: must list at least one container (with name and image)`);
  } else {
    if (!Number.isInteger(pod.consoleContainerNumber) || pod.consoleContainerNumber < 0 || pod.consoleContainerNumber >= containers.length) {
      problems.push(`${base}.consoleContainerNumber: must be an index into spec.containers (0..${containers.length - 1})`);
    }
    containers.forEach((c: unknown, i: number) => {
      const container = (c ?? {}) as Record<string, unknown>;
      if (typeof container['name'] !== 'string' || container['name'] === '') problems.push(`${base}.spec.containers[${i}].name: required`);
      if (typeof container['image'] !== 'string' || container['image'] === '') problems.push(`${base}.spec.containers[${i}].image: required`);
    });
  }
  const restart = pod.spec['restartPolicy'];
  if (restart !== undefined && restart !== 'Never') {
    problems.push(`${base}.spec.restartPolicy: the gateway's pods always use Never (a restarted container loses the session) — remove it`);
  }
  for (const [kind, map] of [['labels', pod.labels], ['annotations', pod.annotations]] as const) {
    for (const [key, value] of Object.entries(map)) {
      if (key.startsWith('airlock.')) problems.push(`${base}.metadata.${kind}.${key}: names starting with "airlock." are reserved for the gateway`);
      else if (!isQualifiedName(key)) problems.push(`${base}.metadata.${kind}.${key}: not a valid Kubernetes ${kind === 'labels' ? 'label' : 'annotation'} name`);
      if (kind === 'labels' && !isLabelValue(value)) {
        problems.push(`${base}.metadata.labels.${key}: label values are at most 63 letters, digits, "-", "_" or "." (starting and ending alphanumeric)`);
      }
    }
  }
  if (!DNS_SUBDOMAIN.test(`${pod.generateName}x`)) {
    problems.push(`${base}.metadata.generateName: must be lower-case letters, digits and "-" (a pod name prefix)`);
  }
  return problems;
}
