/**
 * A protocol-faithful FAKE Kubernetes API server for tests (no real API server can run on this
 * machine). Real HTTP(S) + websocket on 127.0.0.1:0; @kubernetes/client-node talks to it
 * unchanged through a KubeConfig pointing at `url`.
 *
 * Implemented (core/v1 pods only), with the real server's JSON shapes:
 * - POST   /api/v1/namespaces/{ns}/pods                     create (201; generateName; defaults;
 *          422 Invalid — upstream schema via kubernetes-models plus name/label/container rules;
 *          409 AlreadyExists; 404 for an unknown namespace)
 * - GET    /api/v1/namespaces/{ns}/pods/{name}              get (404 NotFound Status)
 * - GET    /api/v1/namespaces/{ns}/pods[?labelSelector&fieldSelector&limit]   list (PodList)
 * - GET    ...pods?watch=true[&resourceVersion=N]           watch: newline-delimited {type, object}
 *          events (ADDED/MODIFIED/DELETED) replayed after N, then live
 * - DELETE /api/v1/namespaces/{ns}/pods/{name}              graceful delete (DeleteOptions body or
 *          ?gracePeriodSeconds), 200 with the object; 404 when gone
 * - GET    /api/v1/namespaces/{ns}/pods/{name}/exec          websocket exec, see fake-kube-exec.ts
 * - GET    /version, /api, /healthz
 * HTTPS by default (throw-away CA, fake-kube-pki.ts), plain HTTP on request.
 * Authentication: `Authorization: Bearer <token>` or a client certificate from that CA; 401
 * otherwise. Authorization: optional `authorize(attributes)` hook (403 Forbidden Status), with the
 * RBAC verbs the real server derives (get/list/watch/create/delete; websocket exec = get AND create
 * on pods/exec). Every request is recorded in `requests`.
 * Pods run as local processes (fake-kube-pod.ts); failure modes: images the fake registry lacks
 * (ErrImagePull → ImagePullBackOff), unschedulable (PodScheduled=False/Unschedulable), runAsNonRoot
 * violations (CreateContainerConfigError).
 *
 * Not implemented: other resources, PATCH/PUT, strategic merge, server-side apply, fieldValidation
 * (unknown fields are dropped silently, like `Ignore`), watch bookmarks, selector-change DELETED
 * events, pagination (`continue`), attach/portforward/log, SPDY, the v1-v3 channel protocols.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { WebSocketServer } from 'ws';
import { Pod } from 'kubernetes-models/v1/Pod';
import { tempDir } from '../helpers/tmp.js';
import { parseExecQuery, runExecSession } from './fake-kube-exec.js';
import { fakePki, type FakePki } from './fake-kube-pki.js';
import { FakePod, podProcesses, type FakeImage } from './fake-kube-pod.js';
import {
  alreadyExists,
  badRequest,
  forbidden,
  invalid,
  matchesFields,
  matchesLabels,
  notFound,
  parseFieldSelector,
  parseLabelSelector,
  rfc3339,
  statusBody,
  unauthorized,
  type Json,
  type StatusCause,
} from './fake-kube-status.js';

export type { FakeImage } from './fake-kube-pod.js';

export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

export interface RequestAttributes {
  readonly verb: 'get' | 'list' | 'watch' | 'create' | 'delete';
  /** "pods" or "pods/exec". */
  readonly resource: string;
  readonly namespace: string;
  readonly name?: string;
}

export interface FakeKubeApiServerOptions {
  /** Accepted bearer token (default: random). */
  readonly token?: string;
  /** Namespaces that exist (default ["default"]). */
  readonly namespaces?: readonly string[];
  /** Exec subprotocols served, in preference order (default v5 then v4). */
  readonly protocols?: readonly string[];
  /** The fake registry; images not listed get `defaultImage`. */
  readonly images?: Readonly<Record<string, FakeImage>>;
  readonly defaultImage?: FakeImage;
  /** Delay of each pod lifecycle step (schedule, pull, start); default 10 ms. */
  readonly stepDelayMs?: number;
  /**
   * The server ends every watch after this long (real API servers end them after a random
   * --min-request-timeout based period); default never. Clients must re-GET and watch again.
   */
  readonly maxWatchMs?: number;
  /** RBAC stand-in; default allows everything. */
  readonly authorize?: (attributes: RequestAttributes) => boolean;
  /**
   * Plain HTTP instead of HTTPS. By default the fake serves HTTPS with a throw-away CA
   * (fake-kube-pki.ts) and accepts that CA's client certificates as authentication too.
   */
  readonly plainHttp?: boolean;
}

export interface RecordedRequest extends RequestAttributes {
  readonly at: number;
}

export interface FakeKubeApiServer {
  readonly url: string;
  readonly token: string;
  /** The PKI (CA, client cert/key) when serving HTTPS. */
  readonly pki: FakePki | undefined;
  readonly requests: RecordedRequest[];
  /** A KubeConfig for this server (bearer token auth). */
  kubeConfig(): KubeConfig;
  /** Current pod objects (JSON as the server would return them). */
  pods(namespace?: string): Json[];
  pod(namespace: string, name: string): Json | undefined;
  /** Resolves when the named pod has left the store. */
  podGone(namespace: string, name: string): Promise<void>;
  setUnschedulable(message: string | undefined): void;
  setImage(name: string, image: FakeImage): void;
  /** Open exec websockets. */
  openExecs(): number;
  /** Live local processes of every pod (containers and exec'd programs). */
  liveProcesses(): Promise<number>;
  close(): Promise<void>;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

interface Watcher {
  readonly namespace: string;
  readonly labels: ReturnType<typeof parseLabelSelector>;
  readonly fields: ReturnType<typeof parseFieldSelector>;
  readonly res: ServerResponse;
}

interface StoredEvent {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: string;
  readonly namespace: string;
}

export async function startFakeKubeApiServer(options: FakeKubeApiServerOptions = {}): Promise<FakeKubeApiServer> {
  const token = options.token ?? randomBytes(16).toString('hex');
  const namespaces = new Set(options.namespaces ?? ['default']);
  const protocols = options.protocols ?? EXEC_PROTOCOLS;
  const images = new Map(Object.entries(options.images ?? {}));
  const stepDelayMs = options.stepDelayMs ?? 10;
  const requests: RecordedRequest[] = [];
  const pki = options.plainHttp ? undefined : await fakePki();
  const root = await tempDir('fake-kube-');
  const pods = new Map<string, FakePod>();
  const watchers = new Set<Watcher>();
  const events: StoredEvent[] = [];
  const sockets = new Set<Socket>();
  let unschedulable: string | undefined;
  let rv = 1;
  let execs = 0;

  const key = (ns: string, name: string) => `${ns}/${name}`;

  const emit = (type: StoredEvent['type'], pod: FakePod) => {
    pod.metadata['resourceVersion'] = String(++rv);
    const object = JSON.stringify(pod.json);
    events.push({ rv, type, object, namespace: pod.namespace });
    for (const w of watchers) {
      if (w.res.writableEnded) continue;
      if (w.namespace === pod.namespace && matchesLabels(w.labels, labelsOf(pod.json)) && matchesFields(w.fields, pod.json)) {
        w.res.write(`{"type":"${type}","object":${object}}\n`);
      }
    }
  };

  const deps = {
    root: root.path,
    image: (name: string) => images.get(name) ?? options.defaultImage ?? {},
    stepDelayMs,
    unschedulable: () => unschedulable,
    changed: (pod: FakePod) => {
      if (!pod.isGone) emit('MODIFIED', pod);
    },
    gone: (pod: FakePod) => {
      pods.delete(key(pod.namespace, pod.name));
      emit('DELETED', pod);
    },
  };

  const authenticated = (req: IncomingMessage): boolean => {
    const tlsSocket = req.socket as TLSSocket;
    if (pki && tlsSocket.authorized) return true;
    return req.headers.authorization === `Bearer ${token}`;
  };

  const allowed = (attrs: RequestAttributes): boolean => {
    requests.push({ ...attrs, at: Date.now() });
    return options.authorize?.(attrs) ?? true;
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) reply(res, 500, statusBody(500, 'InternalError', `fake: ${String(err)}`));
      else res.destroy();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (!authenticated(req)) return reply(res, 401, unauthorized());
    if (url.pathname === '/version' || url.pathname === '/version/') {
      return reply(res, 200, { major: '1', minor: '31', gitVersion: 'v1.31.0-fake', platform: 'linux/amd64' });
    }
    if (url.pathname === '/api' || url.pathname === '/api/') return reply(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    const m = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+)(?:\/([^/]+))?)?\/?$/);
    if (!m) return reply(res, 404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
    const ns = decodeURIComponent(m[1]!);
    const name = m[2] ? decodeURIComponent(m[2]) : undefined;
    const sub = m[3];
    if (sub === 'exec') {
      if (!allowed({ verb: 'get', resource: 'pods/exec', namespace: ns, ...(name ? { name } : {}) })) return reply(res, 403, forbidden('get', 'pods/exec', ns, name));
      return reply(res, 400, badRequest('Upgrade request required'));
    }
    if (sub !== undefined) return reply(res, 404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
    const method = req.method ?? 'GET';
    const watch = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
    const verb: RequestAttributes['verb'] =
      method === 'POST' ? 'create' : method === 'DELETE' ? 'delete' : name ? 'get' : watch ? 'watch' : 'list';
    if (!['GET', 'POST', 'DELETE'].includes(method) || (method === 'POST' && name) || (method === 'DELETE' && !name)) {
      return reply(res, 405, statusBody(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
    }
    if (!allowed({ verb, resource: 'pods', namespace: ns, ...(name ? { name } : {}) })) return reply(res, 403, forbidden(verb, 'pods', ns, name));
    if (!namespaces.has(ns)) return reply(res, 404, notFound('namespaces', ns));

    if (verb === 'create') return createPod(ns, await readJson(req), res);
    if (verb === 'get') {
      const pod = pods.get(key(ns, name!));
      return pod ? reply(res, 200, pod.json) : reply(res, 404, notFound('pods', name!));
    }
    if (verb === 'delete') {
      const pod = pods.get(key(ns, name!));
      if (!pod) return reply(res, 404, notFound('pods', name!));
      const body = await readJson(req).catch(() => ({}) as Json);
      const fromQuery = url.searchParams.get('gracePeriodSeconds');
      const grace = Number(body['gracePeriodSeconds'] ?? fromQuery ?? pod.spec['terminationGracePeriodSeconds'] ?? 30);
      // pkg/registry/core/pod/strategy.go: unscheduled or finished pods go at once.
      const effective = !pod.spec['nodeName'] || pod.phase === 'Succeeded' || pod.phase === 'Failed' ? 0 : grace;
      return reply(res, 200, pod.delete(effective));
    }
    let labels: ReturnType<typeof parseLabelSelector>;
    let fields: ReturnType<typeof parseFieldSelector>;
    try {
      labels = parseLabelSelector(url.searchParams.get('labelSelector') ?? '');
      fields = parseFieldSelector(url.searchParams.get('fieldSelector') ?? '');
    } catch (err) {
      return reply(res, 400, badRequest((err as Error).message));
    }
    if (verb === 'watch') return startWatch(ns, labels, fields, url.searchParams, res);
    const items = [...pods.values()]
      .filter((p) => p.namespace === ns && matchesLabels(labels, labelsOf(p.json)) && matchesFields(fields, p.json))
      .map((p) => p.json);
    const limit = Number(url.searchParams.get('limit') ?? 0);
    return reply(res, 200, {
      kind: 'PodList',
      apiVersion: 'v1',
      metadata: { resourceVersion: String(rv) },
      items: limit > 0 ? items.slice(0, limit) : items,
    });
  }

  function createPod(ns: string, body: Json, res: ServerResponse): void {
    const metadata = { ...((body['metadata'] as Json | undefined) ?? {}) };
    if (metadata['namespace'] !== undefined && metadata['namespace'] !== ns) {
      return reply(res, 400, badRequest('the namespace of the provided object does not match the namespace sent on the request'));
    }
    if (!metadata['name'] && typeof metadata['generateName'] === 'string') {
      metadata['name'] = `${metadata['generateName']}${randomBytes(3).toString('hex').slice(0, 5)}`;
    }
    const name = String(metadata['name'] ?? '');
    const causes = validatePod({ ...body, metadata });
    if (causes.length > 0) return reply(res, 422, invalid(name, causes));
    if (pods.has(key(ns, name))) return reply(res, 409, alreadyExists(name));
    const json = defaultPod(body, { ...metadata, namespace: ns, uid: randomUUID(), creationTimestamp: rfc3339(Date.now()) });
    const pod = new FakePod(json, deps);
    pods.set(key(ns, name), pod);
    emit('ADDED', pod);
    reply(res, 201, pod.json);
    pod.start();
  }

  function startWatch(
    ns: string,
    labels: ReturnType<typeof parseLabelSelector>,
    fields: ReturnType<typeof parseFieldSelector>,
    params: URLSearchParams,
    res: ServerResponse,
  ): void {
    const from = Number(params.get('resourceVersion') ?? 0);
    if (from > 0 && events.length > 0 && from < events[0]!.rv - 1) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"type":"ERROR","object":${JSON.stringify(statusBody(410, 'Expired', `too old resource version: ${from} (${events[0]!.rv})`))}}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const matches = (obj: Json) => matchesLabels(labels, labelsOf(obj)) && matchesFields(fields, obj);
    if (from > 0) {
      for (const e of events) {
        if (e.rv <= from || e.namespace !== ns) continue;
        const obj = JSON.parse(e.object) as Json;
        if (matches(obj)) res.write(`{"type":"${e.type}","object":${e.object}}\n`);
      }
    } else {
      for (const p of pods.values()) if (p.namespace === ns && matches(p.json)) res.write(`{"type":"ADDED","object":${JSON.stringify(p.json)}}\n`);
    }
    const watcher: Watcher = { namespace: ns, labels, fields, res };
    watchers.add(watcher);
    const requested = Number(params.get('timeoutSeconds') ?? 0) * 1000;
    const limit = Math.min(requested > 0 ? requested : Infinity, options.maxWatchMs ?? Infinity);
    const timer = Number.isFinite(limit)
      ? setTimeout(() => {
          watchers.delete(watcher);
          res.end();
        }, limit)
      : undefined;
    timer?.unref();
    res.once('close', () => {
      clearTimeout(timer);
      watchers.delete(watcher);
    });
  }

  const server: Server = pki
    ? createHttpsServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: false }, handler)
    : createHttpServer(handler);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => protocols.find((p) => offered.has(p)) ?? false,
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const fail = (code: number, body: Json) => {
      const text = JSON.stringify(body);
      socket.end(`HTTP/1.1 ${code} ${code === 401 ? 'Unauthorized' : code === 403 ? 'Forbidden' : code === 404 ? 'Not Found' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
    };
    const url = new URL(req.url ?? '/', 'http://fake');
    const m = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec\/?$/);
    if (!authenticated(req)) return fail(401, unauthorized());
    if (!m) return fail(404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
    const ns = decodeURIComponent(m[1]!);
    const name = decodeURIComponent(m[2]!);
    // A websocket exec is a GET: authorized as `get` on pods/exec, and (AuthorizePodWebsocketUpgradeCreatePermission,
    // default on since 1.35) also as `create`.
    for (const verb of ['get', 'create'] as const) {
      if (!allowed({ verb, resource: 'pods/exec', namespace: ns, name })) return fail(403, forbidden(verb, 'pods/exec', ns, name));
    }
    const pod = pods.get(key(ns, name));
    if (!pod) return fail(404, notFound('pods', name));
    const exec = parseExecQuery(url.searchParams);
    if (exec.command.length === 0) return fail(400, badRequest('you must specify at least one command for the container'));
    if (!exec.stdin && !exec.stdout && !exec.stderr) return fail(400, badRequest('you must specify at least 1 of stdin, stdout, stderr'));
    const names = pod.containerNames();
    const container = exec.container ?? (names.length === 1 ? names[0] : undefined);
    if (!container) return fail(400, badRequest(`a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`));
    if (!names.includes(container)) return fail(400, badRequest(`container ${container} is not valid for pod ${name}`));
    if (!pod.spec['nodeName']) return fail(400, badRequest(`pod ${name} does not have a host assigned`));
    const runtime = pod.runtime(container);
    if (!runtime) return fail(400, badRequest(`unable to upgrade connection: container not found ("${container}")`));
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    if (!protocols.some((p) => offered.includes(p))) return fail(400, badRequest(`no supported websocket subprotocol offered (server supports ${protocols.join(', ')})`));
    wss.handleUpgrade(req, socket, head, (ws) => {
      execs++;
      runExecSession(ws, ws.protocol, exec, runtime, { ended: () => undefined });
      ws.once('close', () => execs--);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `${pki ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    url,
    token,
    pki,
    requests,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        // client-node refuses plain HTTP unless verification is off (there is nothing to verify).
        clusters: [{ name: 'fake', server: url, skipTLSVerify: !pki, ...(pki ? { caData: Buffer.from(pki.caCert).toString('base64') } : {}) }],
        users: [{ name: 'fake', token }],
        contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
        currentContext: 'fake',
      });
      return kc;
    },
    pods: (namespace) => [...pods.values()].filter((p) => namespace === undefined || p.namespace === namespace).map((p) => p.json),
    pod: (namespace, name) => pods.get(key(namespace, name))?.json,
    podGone: (namespace, name) => pods.get(key(namespace, name))?.whenGone() ?? Promise.resolve(),
    setUnschedulable: (message) => {
      unschedulable = message;
    },
    setImage: (name, image) => {
      images.set(name, image);
    },
    openExecs: () => execs,
    async liveProcesses() {
      let n = 0;
      for (const p of pods.values()) n += (await podProcesses(p.uid)).length;
      return n;
    },
    async close() {
      for (const w of watchers) w.res.end();
      await Promise.all([...pods.values()].map((p) => p.destroy()));
      for (const client of wss.clients) client.terminate();
      wss.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await root.cleanup();
    },
  };
}

function labelsOf(obj: Json): Record<string, string> {
  return ((obj['metadata'] as Json | undefined)?.['labels'] as Record<string, string> | undefined) ?? {};
}

function reply(res: ServerResponse, code: number, body: Json): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  const parsed: unknown = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('body is not an object');
  return parsed as Json;
}

/** The API server's validation rules this fake checks (ValidatePodCreate, a subset) + the OpenAPI schema. */
export function validatePod(body: Json): StatusCause[] {
  const causes: StatusCause[] = [];
  const metadata = (body['metadata'] as Json | undefined) ?? {};
  const name = metadata['name'];
  if (typeof name !== 'string' || name === '') causes.push({ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' });
  else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`, field: 'metadata.name' });
  }
  for (const kind of ['labels', 'annotations'] as const) {
    const map = (metadata[kind] as Record<string, unknown> | undefined) ?? {};
    for (const [k, v] of Object.entries(map)) {
      const slash = k.lastIndexOf('/');
      const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
      const local = slash >= 0 ? k.slice(slash + 1) : k;
      if ((prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) || local.length > 63 || !QUALIFIED_NAME.test(local)) {
        causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.'`, field: `metadata.${kind}` });
      }
      if (kind === 'labels' && (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v))) {
        causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`, field: `metadata.labels` });
      }
    }
  }
  const spec = body['spec'] as Json | undefined;
  const containers = spec?.['containers'];
  if (!Array.isArray(containers) || containers.length === 0) causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.containers' });
  else {
    const seen = new Set<string>();
    containers.forEach((c: Json, i: number) => {
      const cname = c['name'];
      if (typeof cname !== 'string' || !DNS1123_LABEL.test(cname) || cname.length > 63) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${String(cname)}"`, field: `spec.containers[${i}].name` });
      else if (seen.has(cname)) causes.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${cname}"`, field: `spec.containers[${i}].name` });
      else seen.add(cname);
      if (typeof c['image'] !== 'string' || c['image'].trim() === '') causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: `spec.containers[${i}].image` });
    });
  }
  const restart = spec?.['restartPolicy'];
  if (restart !== undefined && !['Always', 'OnFailure', 'Never'].includes(String(restart))) {
    causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: "${String(restart)}": supported values: "Always", "OnFailure", "Never"`, field: 'spec.restartPolicy' });
  }
  const deadline = spec?.['activeDeadlineSeconds'];
  if (deadline !== undefined && (typeof deadline !== 'number' || deadline < 1)) {
    causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${String(deadline)}: must be between 1 and 2147483647, inclusive`, field: 'spec.activeDeadlineSeconds' });
  }
  try {
    new Pod({ ...(body as object), apiVersion: 'v1', kind: 'Pod' } as ConstructorParameters<typeof Pod>[0]).validate();
  } catch (err) {
    const errors = (err as { errors?: Array<{ instancePath?: string; message?: string }> }).errors ?? [];
    for (const e of errors) causes.push({ reason: 'FieldValueInvalid', message: e.message ?? 'invalid', field: (e.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') });
    if (errors.length === 0) causes.push({ reason: 'FieldValueInvalid', message: (err as Error).message });
  }
  return causes;
}

/** The defaults the API server fills in (pkg/apis/core/v1/defaults.go, a subset). */
function defaultPod(body: Json, metadata: Json): Json {
  const spec = structuredClone((body['spec'] as Json | undefined) ?? {});
  spec['restartPolicy'] ??= 'Always';
  spec['dnsPolicy'] ??= 'ClusterFirst';
  spec['schedulerName'] ??= 'default-scheduler';
  spec['terminationGracePeriodSeconds'] ??= 30;
  spec['securityContext'] ??= {};
  spec['serviceAccountName'] ??= 'default';
  spec['serviceAccount'] = spec['serviceAccountName'];
  spec['enableServiceLinks'] ??= true;
  spec['priority'] ??= 0;
  spec['preemptionPolicy'] ??= 'PreemptLowerPriority';
  spec['tolerations'] ??= [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  ];
  let limited = 0;
  for (const c of spec['containers'] as Json[]) {
    c['terminationMessagePath'] ??= '/dev/termination-log';
    c['terminationMessagePolicy'] ??= 'File';
    const image = String(c['image']);
    const tagged = /:[^/]+$/.test(image) && !image.endsWith(':latest');
    c['imagePullPolicy'] ??= tagged || image.includes('@') ? 'IfNotPresent' : 'Always';
    c['resources'] ??= {};
    if (Object.keys(c['resources'] as Json).length > 0) limited++;
  }
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { ...metadata, resourceVersion: '0' },
    spec,
    status: { phase: 'Pending', qosClass: limited === 0 ? 'BestEffort' : 'Burstable' },
  };
}
