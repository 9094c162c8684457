import {
  CoreV1Api,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  Observable,
  ServerConfiguration,
  Watch,
  createConfiguration,
  wrapHttpLibrary,
  type ConfigurationOptions,
  type RequestContext,
  type Exec,
  type ResponseContext,
} from '@kubernetes/client-node';
import WebSocket from 'ws';
import type { Clock } from '../../core/clock.js';
import { KubeHttpError } from './kube-errors.js';
import type { KubernetesConnectionOptions } from './options.js';
import { RateLimiter } from './rate-limiter.js';
import { timeoutSignal } from '../../core/timeout-signal.js';

/** Exec subprotocols we speak, best first. v5 can close stdin alone (a [255, 0] message). */
export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

/**
 * One API server connection: the typed REST client (object-parameter API) with our rate limiter
 * and per-call abort signals, client-node's Watch, and our websocket connector for exec.
 */
export interface KubeClient {
  readonly config: KubeConfig;
  readonly core: CoreV1Api;
  readonly watch: Watch;
  readonly sockets: KubeWebSocketConnector;
  readonly limiter: RateLimiter;
  /** Per-call options: aborts the request on `signal` or after `timeoutMs`. */
  call(timeoutMs: number, signal?: AbortSignal): ConfigurationOptions;
}

const PEM = /-----BEGIN [A-Z0-9 ]+-----/;

/** PEM text goes inline (base64 `*Data`), anything else is a path the library reads. */
function pemOrFile<D extends string, F extends string>(value: string | undefined, data: D, file: F): Partial<Record<D | F, string>> {
  if (value === undefined) return {};
  if (PEM.test(value)) return { [data]: Buffer.from(value).toString('base64') } as Partial<Record<D | F, string>>;
  return { [file]: value } as Partial<Record<D | F, string>>;
}

export function buildKubeConfig(options: KubernetesConnectionOptions): KubeConfig {
  const kc = new KubeConfig();
  const plain = options.host.startsWith('http://');
  kc.loadFromOptions({
    // client-node refuses http:// unless verification is off; there is no TLS to verify then.
    clusters: [{ name: 'airlock', server: options.host.replace(/\/+$/, ''), skipTLSVerify: plain, ...pemOrFile(options.cacert, 'caData', 'caFile') }],
    users: [
      {
        name: 'airlock',
        ...(options.bearerToken ? { token: options.bearerToken } : {}),
        // client-node's FileAuth re-reads the file every minute (rotating projected tokens).
        ...(options.bearerTokenFile ? { authProvider: { name: 'tokenFile', config: { tokenFile: options.bearerTokenFile } } } : {}),
        ...pemOrFile(options.cert, 'certData', 'certFile'),
        ...pemOrFile(options.key, 'keyData', 'keyFile'),
      },
    ],
    contexts: [{ name: 'airlock', cluster: 'airlock', user: 'airlock' }],
    currentContext: 'airlock',
  });
  return kc;
}

export function createKubeClient(options: KubernetesConnectionOptions, clock?: Clock): KubeClient {
  const config = buildKubeConfig(options);
  const limiter = new RateLimiter(options.qps, options.burst, clock);
  const fetchLibrary = new IsomorphicFetchHttpLibrary();
  const httpApi = wrapHttpLibrary({
    async send(request: RequestContext): Promise<ResponseContext> {
      await limiter.take(request.getSignal() as AbortSignal | undefined);
      return fetchLibrary.send(request).toPromise();
    },
  });
  const cluster = config.getCurrentCluster();
  const core = new CoreV1Api(
    createConfiguration({ baseServer: new ServerConfiguration(cluster?.server ?? options.host, {}), authMethods: { default: config }, httpApi }),
  );
  return {
    config,
    core,
    watch: new Watch(config),
    sockets: new KubeWebSocketConnector(config, limiter),
    limiter,
    call(timeoutMs: number, signal?: AbortSignal): ConfigurationOptions {
      const timeout = timeoutSignal(timeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      return {
        middleware: [
          {
            pre: (context: RequestContext) => {
              // node-fetch's AbortSignal type differs only nominally from the platform's.
              context.setSignal(combined as Parameters<RequestContext['setSignal']>[0]);
              return new Observable(Promise.resolve(context));
            },
            post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
          },
        ],
        middlewareMergeStrategy: 'append',
      };
    },
  };
}

/** client-node's websocket seam (not exported by name): what `new Exec(config, handler)` accepts. */
type WebSocketInterface = NonNullable<ConstructorParameters<typeof Exec>[1]>;

export type BinaryHandler = (stream: number, payload: Buffer) => boolean;

/**
 * Opens websockets to the API server with the KubeConfig's TLS and credentials, on `ws`.
 * Implements client-node's WebSocketInterface (so it could be handed to its Exec), but our exec
 * uses it directly: client-node's own handler writes to the process's stdio by default, copies
 * every frame and has no backpressure (see exec-stream.ts). Frames reach `binaryHandler` as
 * views of the received message (no copy); a non-101 answer becomes a KubeHttpError carrying the
 * server's Status.
 */
export class KubeWebSocketConnector implements WebSocketInterface {
  readonly #config: KubeConfig;
  readonly #limiter: RateLimiter;

  constructor(config: KubeConfig, limiter: RateLimiter) {
    this.#config = config;
    this.#limiter = limiter;
  }

  async connect(
    path: string,
    textHandler: ((text: string) => boolean) | null,
    binaryHandler: BinaryHandler | null,
    signal?: AbortSignal,
  ): Promise<WebSocket> {
    await this.#limiter.take(signal);
    const cluster = this.#config.getCurrentCluster();
    if (!cluster) throw new Error('no cluster configured');
    const uri = `${cluster.server.replace(/^http/, 'ws')}${path}`;
    const opts: WebSocket.ClientOptions = {};
    await this.#config.applyToHTTPSOptions(opts);
    signal?.throwIfAborted();
    return new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(uri, [...EXEC_PROTOCOLS], { ...opts, perMessageDeflate: false });
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        ws.terminate();
        reject(err);
      };
      const onAbort = () => fail(signal?.reason ?? new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      ws.once('open', () => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        resolve(ws);
      });
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => fail(new KubeHttpError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
        res.once('error', (err) => fail(err));
      });
      ws.on('error', (err) => fail(err));
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) {
          if (data.length === 0 || !binaryHandler) return;
          if (!binaryHandler(data[0]!, data.subarray(1))) ws.close();
        } else if (textHandler && !textHandler(data.toString('utf8'))) {
          ws.close();
        }
      });
    });
  }
}
