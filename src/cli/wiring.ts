/**
 * Builds the gateway's object graph from a parsed configuration. The only place that knows
 * every concrete implementation; everything else sees interfaces.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config/index.js';
import { filterEnv } from '../config/index.js';
import type { AuthMethod, AuthProvider } from '../auth/provider.js';
import { createAuthChain } from '../auth/chain.js';
import { createWebhookAuthProvider } from '../auth/webhook.js';
import { createKeyboardInteractiveWebhookProvider } from '../auth/keyboard-interactive.js';
import { createAuthzWebhook, type Authorizer } from '../auth/authz.js';
import { withTokenPrompt } from '../auth/token.js';
import type { AuthRateLimitOptions } from '../ssh/auth-rate-limit.js';
import { createAuthorizedKeysProvider } from '../auth/authorized-keys.js';
import { createSshCaProvider, loadTrustedCaKeys } from '../auth/ssh-ca.js';
import { loadRevocationList } from '../auth/revocation-list.js';
import { systemClock } from '../core/clock.js';
import { createDockerBackend, type DockerBackend, type DockerBackendOptions } from '../backend/docker/index.js';
// Types only: the Kubernetes backend (and @kubernetes/client-node, seconds to load) is imported on use.
import type { KubernetesBackendOptions, KubernetesConnectionOptions } from '../backend/kubernetes/index.js';
import type { Backend } from '../backend/backend.js';
import { createSshProxyBackend, type SshProxyBackendOptions } from '../backend/sshproxy/index.js';
import { AirlockError } from '../core/errors.js';
import { readFileSync } from 'node:fs';
import { IN_CLUSTER_CA_FILE, IN_CLUSTER_TOKEN_FILE } from '../config/kubernetes-schema.js';
import type { SshOptions } from '../ssh/options.js';
import type { SecurityPolicyConfig } from '../ssh/policy.js';

/**
 * `tokenProvider` (CI-debug broker) goes first: `ssh <token>@gateway` logs in with method "none";
 * the token may also be typed as the password or, when no keyboard-interactive webhook leads that
 * conversation, at a keyboard-interactive "Debug-session token:" prompt.
 */
export function buildAuth(
  config: AppConfig,
  logger: Logger,
  tokenProvider?: AuthProvider,
): { provider: AuthProvider; methods: AuthMethod[]; authorizer?: Authorizer } {
  const { password, publicKey, keyboardInteractive, authz, authTimeout } = config.auth;
  const kbdWebhook = keyboardInteractive.method === 'webhook' && keyboardInteractive.webhook.url ? keyboardInteractive.webhook : undefined;
  const providers: AuthProvider[] = tokenProvider ? [kbdWebhook ? tokenProvider : withTokenPrompt(tokenProvider)] : [];
  const methods: AuthMethod[] = tokenProvider ? ['none'] : [];
  const authLogger = logger.child({ component: 'auth' });
  if (publicKey.method === 'webhook' && publicKey.webhook.url) {
    providers.push(
      createWebhookAuthProvider({ publicKeyUrl: publicKey.webhook.url, timeoutMs: publicKey.webhook.timeout, authTimeoutMs: authTimeout, logger: authLogger }),
    );
    methods.push('publickey');
  } else if (publicKey.method === 'authorizedKeys' && publicKey.authorizedKeys) {
    providers.push(createAuthorizedKeysProvider({ file: publicKey.authorizedKeys, logger: authLogger }));
    methods.push('publickey');
  }
  if (publicKey.trustedUserCAKeys) {
    // A bad revocation list stops the start (CONFIG_INVALID naming the file); later bad edits
    // fail closed at login until fixed.
    if (publicKey.revokedKeys) loadRevocationList(publicKey.revokedKeys);
    // After the other key providers: for a certificate they say a plain "no" and this one's reason wins.
    providers.push(
      createSshCaProvider({
        trustedCaKeys: loadTrustedCaKeys(publicKey.trustedUserCAKeys),
        ...(publicKey.revokedKeys ? { revokedKeysFile: publicKey.revokedKeys } : {}),
        closeAtExpiry: publicKey.closeAtCertificateExpiry,
        clock: systemClock,
        logger: authLogger.child({ provider: 'ssh-ca' }),
      }),
    );
    if (!methods.includes('publickey')) methods.push('publickey');
  }
  if (password.method === 'webhook' && password.webhook.url) {
    providers.push(
      createWebhookAuthProvider({ passwordUrl: password.webhook.url, timeoutMs: password.webhook.timeout, authTimeoutMs: authTimeout, logger: authLogger }),
    );
    methods.push('password');
  }
  if (kbdWebhook?.url) {
    providers.push(
      createKeyboardInteractiveWebhookProvider({ url: kbdWebhook.url, timeoutMs: kbdWebhook.timeout, authTimeoutMs: authTimeout, logger: authLogger }),
    );
    methods.push('keyboard-interactive');
  }
  // The token may also be typed (clients that insist on asking for one).
  if (tokenProvider && !methods.includes('password')) methods.push('password');
  if (tokenProvider && !methods.includes('keyboard-interactive')) methods.push('keyboard-interactive');
  const authorizer =
    authz.method === 'webhook' && authz.webhook.url
      ? createAuthzWebhook({ url: authz.webhook.url, timeoutMs: authz.webhook.timeout, authTimeoutMs: authTimeout, logger: authLogger.child({ step: 'authz' }) })
      : undefined;
  return { provider: createAuthChain(providers), methods, ...(authorizer ? { authorizer } : {}) };
}

/** auth.rateLimit → the SSH layer's failed-login limits. */
export function authRateLimit(config: AppConfig): AuthRateLimitOptions {
  const { perIp, perUser } = config.auth.rateLimit;
  return {
    perIp: { maxFailures: perIp.maxFailures, windowMs: perIp.window, blockForMs: perIp.blockFor },
    perUser: { maxFailures: perUser.maxFailures, windowMs: perUser.window, blockForMs: perUser.blockFor },
  };
}

export function sshOptions(config: AppConfig, listen: { host: string; port: number }): SshOptions {
  const ssh = config.ssh;
  return {
    listenHost: listen.host,
    listenPort: listen.port,
    ciphers: ssh.ciphers,
    kex: ssh.kex,
    macs: ssh.macs,
    hostKeyAlgos: ssh.hostKeyAlgos,
    banner: ssh.banner,
    serverVersion: ssh.serverVersion,
    clientAliveInterval: ssh.clientAliveInterval,
    clientAliveCountMax: ssh.clientAliveCountMax,
    loginGraceTime: ssh.loginGraceTime,
    maxAuthTries: ssh.maxAuthTries,
    idleTimeout: ssh.idleTimeout,
    deadlineWarning: ssh.deadlineWarning,
    maxConnectionDuration: ssh.maxConnectionDuration,
    maxSessions: config.security.maxSessions,
    envAllowed: (name) => filterEnv(name, config.security.env),
    security: securityPolicy(config.security),
    ...(config.ssh.motd ? { motd: config.ssh.motd } : {}),
  };
}

/** security.* → the session policy; absent modes take security.defaultMode (default "enable"). */
export function securityPolicy(security: AppConfig['security']): SecurityPolicyConfig {
  const fallback = security.defaultMode ?? 'enable';
  return {
    ...(security.forceCommand !== undefined ? { forceCommand: security.forceCommand } : {}),
    command: { mode: security.command?.mode ?? fallback, allow: security.command?.allow ?? [] },
    shell: { mode: security.shell?.mode ?? fallback },
    tty: { mode: security.tty?.mode ?? fallback },
    subsystem: { mode: security.subsystem?.mode ?? fallback, allow: security.subsystem?.allow ?? [], deny: security.subsystem?.deny ?? [] },
    signal: { mode: security.signal?.mode ?? fallback, allow: security.signal?.allow ?? [], deny: security.signal?.deny ?? [] },
    // ContainerSSH's "filter" has no list to filter by: it closes the path like "disable" (configWarnings).
    forwarding: {
      forwardingMode: security.forwarding.forwardingMode === 'enable' ? 'enable' : 'disable',
      reverseForwardingMode: security.forwarding.reverseForwardingMode === 'enable' ? 'enable' : 'disable',
    },
  };
}

export function dockerOptions(config: AppConfig, gatewayId: string, logger: Logger): DockerBackendOptions {
  const d = config.docker;
  return {
    host: d.connection.host,
    ...(d.connection.cert || d.connection.key || d.connection.cacert
      ? { tls: { ...(d.connection.cert ? { cert: d.connection.cert } : {}), ...(d.connection.key ? { key: d.connection.key } : {}), ...(d.connection.cacert ? { ca: d.connection.cacert } : {}) } }
      : {}),
    gatewayId,
    container: d.execution.container,
    hostConfig: d.execution.host,
    mode: d.execution.mode,
    ...(d.execution.shellCommand ? { shellCommand: d.execution.shellCommand } : {}),
    idleCommand: d.execution.idleCommand,
    subsystems: d.execution.subsystems,
    imagePullPolicy: d.execution.imagePullPolicy,
    timeouts: d.timeouts,
    ...(d.pool.size > 0 ? { pool: { size: d.pool.size, ...(d.pool.image ? { image: d.pool.image } : {}) } } : {}),
    relayImage: d.relay.image,
    logger: logger.child({ component: 'docker' }),
  };
}

/**
 * What the reaper must keep: the open connections, plus the Docker warm pool's containers (their
 * `airlock.connection` is a pool key, owned by the backend until the claiming connection removes it).
 */
export function reaperLiveIds(gateway: { liveConnectionIds(): ReadonlySet<string> }, backend: object): () => string[] {
  const pool = 'poolOwnerIds' in backend && typeof backend.poolOwnerIds === 'function' ? (backend.poolOwnerIds.bind(backend) as () => string[]) : undefined;
  return () => [...gateway.liveConnectionIds(), ...(pool ? pool() : [])];
}

export async function createBackend(config: AppConfig, gatewayId: string, logger: Logger): Promise<Backend> {
  if (config.backend === 'kubernetes') {
    const { createKubernetesBackend } = await import('../backend/kubernetes/index.js');
    return createKubernetesBackend(kubernetesOptions(config, gatewayId, logger));
  }
  if (config.backend === 'sshproxy') return createSshProxyBackend(sshProxyOptions(config, logger));
  // `podman` is the docker backend (the schema already pointed docker.connection.host at Podman).
  return createDockerBackend(dockerOptions(config, gatewayId, logger));
}

/**
 * A backend for one connection's own config (config server answer): on the gateway's Docker
 * backend when both are Docker/Podman (it shares the engine client and image caches, or makes
 * its own client for another engine), else built from scratch. The caller closes it.
 */
export async function createConnectionBackend(config: AppConfig, gatewayId: string, logger: Logger, gatewayBackend: Backend): Promise<Backend> {
  const derive = (gatewayBackend as Partial<DockerBackend>).derive;
  if ((config.backend === 'docker' || config.backend === 'podman') && typeof derive === 'function') {
    return derive.call(gatewayBackend, dockerOptions(config, gatewayId, logger));
  }
  return createBackend(config, gatewayId, logger);
}

/** sshproxy.* → SshProxyBackendOptions; `privateKey` may be the key itself or a file holding it. */
export function sshProxyOptions(config: AppConfig, logger: Logger): SshProxyBackendOptions {
  const p = config.sshproxy;
  if (!p) throw new AirlockError('CONFIG_INVALID', 'backend is "sshproxy" but there is no sshproxy section');
  let privateKey: string | undefined;
  if (p.privateKey !== undefined) {
    if (p.privateKey.includes('-----BEGIN ')) privateKey = p.privateKey;
    else {
      try {
        privateKey = readFileSync(p.privateKey, 'utf8');
      } catch (err) {
        throw new AirlockError('CONFIG_FILE_UNREADABLE', `sshproxy.privateKey: cannot read the key file ${p.privateKey}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  const algorithms = {
    ...(p.ciphers ? { cipher: p.ciphers } : {}),
    ...(p.kex ? { kex: p.kex } : {}),
    ...(p.macs ? { hmac: p.macs } : {}),
    ...(p.hostKeyAlgos ? { serverHostKey: p.hostKeyAlgos } : {}),
  };
  return {
    server: p.server,
    port: p.port,
    usernamePassThrough: p.usernamePassThrough,
    ...(p.username !== undefined ? { username: p.username } : {}),
    ...(p.password !== undefined ? { password: p.password } : {}),
    ...(privateKey !== undefined ? { privateKey } : {}),
    allowedHostKeyFingerprints: p.allowedHostKeyFingerprints,
    ...(Object.keys(algorithms).length > 0 ? { algorithms } : {}),
    timeoutMs: p.timeout,
    clientVersion: p.clientVersion,
    logger: logger.child({ component: 'sshproxy' }),
  };
}

/**
 * kubernetes.connection with the in-cluster defaults: without bearerToken, bearerTokenFile or
 * cert the gateway authenticates as its own ServiceAccount (projected token + cluster CA).
 */
export function kubernetesConnection(config: AppConfig): KubernetesConnectionOptions {
  const c = config.kubernetes.connection;
  const inCluster = c.bearerToken === undefined && c.bearerTokenFile === undefined && c.cert === undefined;
  const tokenFile = c.bearerTokenFile ?? (inCluster ? IN_CLUSTER_TOKEN_FILE : undefined);
  const cacert = c.cacert ?? (inCluster ? IN_CLUSTER_CA_FILE : undefined);
  return {
    host: c.host,
    qps: c.qps,
    burst: c.burst,
    ...(c.bearerToken !== undefined ? { bearerToken: c.bearerToken } : {}),
    ...(tokenFile !== undefined ? { bearerTokenFile: tokenFile } : {}),
    ...(c.cert !== undefined ? { cert: c.cert } : {}),
    ...(c.key !== undefined ? { key: c.key } : {}),
    ...(cacert !== undefined ? { cacert } : {}),
  };
}

export function kubernetesOptions(config: AppConfig, gatewayId: string, logger: Logger): KubernetesBackendOptions {
  const k = config.kubernetes;
  return {
    connection: kubernetesConnection(config),
    gatewayId,
    pod: {
      namespace: k.pod.metadata.namespace,
      generateName: k.pod.metadata.generateName,
      labels: k.pod.metadata.labels,
      annotations: k.pod.metadata.annotations,
      spec: k.pod.spec,
      consoleContainerNumber: k.pod.consoleContainerNumber,
    },
    mode: k.pod.mode,
    ...(k.pod.shellCommand ? { shellCommand: k.pod.shellCommand } : {}),
    idleCommand: k.pod.idleCommand,
    subsystems: k.pod.subsystems,
    timeouts: k.timeouts,
    logger: logger.child({ component: 'kubernetes' }),
  };
}
