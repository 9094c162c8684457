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
import { createAuthorizedKeysProvider } from '../auth/authorized-keys.js';
import { createDockerBackend, type DockerBackendOptions } from '../backend/docker/index.js';
import type { SshOptions } from '../ssh/options.js';

/** `tokenProvider` (CI-debug broker) goes first: `ssh <token>@gateway` logs in with method "none". */
export function buildAuth(config: AppConfig, logger: Logger, tokenProvider?: AuthProvider): { provider: AuthProvider; methods: AuthMethod[] } {
  const providers: AuthProvider[] = tokenProvider ? [tokenProvider] : [];
  const methods: AuthMethod[] = tokenProvider ? ['none'] : [];
  const { password, publicKey, authTimeout } = config.auth;
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
  if (password.method === 'webhook' && password.webhook.url) {
    providers.push(
      createWebhookAuthProvider({ passwordUrl: password.webhook.url, timeoutMs: password.webhook.timeout, authTimeoutMs: authTimeout, logger: authLogger }),
    );
    methods.push('password');
  }
  // The token may also be typed as the password (clients that insist on asking for one).
  if (tokenProvider && !methods.includes('password')) methods.push('password');
  return { provider: createAuthChain(providers), methods };
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
    maxSessions: config.security.maxSessions,
    envAllowed: (name) => filterEnv(name, config.security.env),
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
    logger: logger.child({ component: 'docker' }),
  };
}

export function createBackend(config: AppConfig, gatewayId: string, logger: Logger) {
  return createDockerBackend(dockerOptions(config, gatewayId, logger));
}
