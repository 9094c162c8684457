/**
 * ContainerSSH keys that Airlock knows but does not implement (yet). They are errors — a copied
 * ContainerSSH config must not look accepted while part of it is ignored — but with a message that
 * says so instead of "check the spelling".
 */
export interface UnsupportedKey {
  /** Defaults to "not supported yet by this Airlock version". */
  readonly why?: string;
  /** Defaults to "remove it". */
  readonly fix?: string;
}

const NOT_YET: UnsupportedKey = {};
const NO_AGENT: UnsupportedKey = { why: 'not needed: Airlock runs without an agent in the image' };
const V04_AUTH: UnsupportedKey = {
  why: 'ContainerSSH 0.4 layout',
  fix: 'use auth.password / auth.publicKey with method: webhook and webhook.url',
};

/** Top-level sections. */
export const UNSUPPORTED_SECTIONS: Readonly<Record<string, UnsupportedKey>> = {
  cleanupserver: NOT_YET,
  geoip: NOT_YET,
  dockerrun: { why: 'removed in ContainerSSH 0.5', fix: 'move its settings to the docker section' },
  kuberun: { why: 'removed in ContainerSSH 0.5', fix: 'remove it' },
};

// ContainerSSH's HTTP client TLS/redirect options for the auth webhooks and the config server.
const WEBHOOK_CLIENT_KEYS = Object.fromEntries(
  ['auth.password.webhook', 'auth.publicKey.webhook', 'auth.keyboardInteractive.webhook', 'auth.authz.webhook', 'configserver'].flatMap((client) =>
    ['allowRedirects', 'cacert', 'cert', 'key', 'tlsVersion', 'curves', 'cipher'].map((key) => [`${client}.${key}`, NOT_YET]),
  ),
);

// ContainerSSH's TLS options of its metrics and health HTTP servers (Airlock serves plain HTTP:
// put a TLS proxy in front or keep the listeners on a private address).
const OPERATOR_TLS_KEYS = Object.fromEntries(
  ['metrics', 'health'].flatMap((server) =>
    ['cert', 'key', 'clientcacert', 'tlsVersion', 'curves', 'cipher'].map((key) => [`${server}.${key}`, NOT_YET]),
  ),
);

/** Dotted paths below the top level. */
export const UNSUPPORTED_KEYS: Readonly<Record<string, UnsupportedKey>> = {
  ...WEBHOOK_CLIENT_KEYS,
  ...OPERATOR_TLS_KEYS,
  'health.client': { why: 'Airlock has no healthcheck client command', fix: 'remove it (probe GET /healthz or /readyz with curl or your orchestrator)' },
  'ssh.allowedProxies': NOT_YET,
  'auth.keyboardInteractive.oauth2': { why: 'OAuth2 device-flow login is not supported', fix: 'use auth.keyboardInteractive.method: webhook' },
  'auth.gssapi': NOT_YET,
  'auth.url': V04_AUTH,
  'auth.pubkey': V04_AUTH,
  'auth.password.kerberos': NOT_YET,
  'auth.password.webhook.authTimeout': { fix: 'use auth.authTimeout' },
  'auth.publicKey.webhook.authTimeout': { fix: 'use auth.authTimeout' },
  'docker.execution.auth': NOT_YET,
  'docker.execution.network': NOT_YET,
  'docker.execution.platform': NOT_YET,
  'docker.execution.containername': NOT_YET,
  'docker.execution.agentPath': NO_AGENT,
  'docker.execution.disableAgent': NO_AGENT,
  'docker.execution.exposeAuthMetadataAsEnv': NOT_YET,
  'kubernetes.pod.agentPath': NO_AGENT,
  'kubernetes.pod.disableAgent': NO_AGENT,
  ...Object.fromEntries(
    ['exposeAuthMetadataAsEnv', 'exposeAuthMetadataAsLabels', 'exposeAuthMetadataAsAnnotations'].map((key) => [
      `kubernetes.pod.${key}`,
      { fix: 'remove it (non-sensitive auth metadata always becomes airlock.meta.* annotations, and labels where the value fits a label)' },
    ]),
  ),
  ...Object.fromEntries(
    ['certFile', 'keyFile', 'cacertFile'].map((key) => [`kubernetes.connection.${key}`, { fix: `use kubernetes.connection.${key.replace('File', '')}: it takes PEM text or a file path` }]),
  ),
  'kubernetes.connection.insecure': { why: 'Airlock always verifies the API server certificate', fix: 'set kubernetes.connection.cacert' },
  'kubernetes.connection.serverName': NOT_YET,
  'kubernetes.connection.username': { why: 'basic auth was removed from Kubernetes', fix: 'use bearerToken(File) or cert/key' },
  'kubernetes.connection.password': { why: 'basic auth was removed from Kubernetes', fix: 'use bearerToken(File) or cert/key' },
  'kubernetes.connection.timeout': { fix: 'use kubernetes.timeouts.http' },
  'kubernetes.execution': { why: 'the Kubernetes settings are under kubernetes.pod', fix: 'use kubernetes.pod.mode / idleCommand / shellCommand / subsystems' },
  'log.syslog': NOT_YET,
  'audit.s3.cacert': { fix: 'remove it (the system CA store is used for https endpoints)' },
  'audit.s3.acl': NOT_YET,
};

/** Values of known keys that ContainerSSH accepts and Airlock does not implement yet. */
export const UNSUPPORTED_VALUES: Readonly<Record<string, readonly string[]>> = {
  'log.destination': ['syslog'],
  'auth.password.method': ['kerberos'],
  'auth.keyboardInteractive.method': ['oauth2'],
  // "filter" is accepted for every forwarding mode and means "disable" (compat-warnings.ts).
  'security.forwarding.socketForwardingMode': ['enable'],
  'security.forwarding.socketListenMode': ['enable'],
  'security.forwarding.x11ForwardingMode': ['enable'],
};
