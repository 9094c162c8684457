export {
  appConfigSchema,
  sshSchema,
  authSchema,
  dockerSchema,
  securitySchema,
  logSchema,
  SSH_CIPHERS,
  SSH_KEX,
  SSH_MACS,
  SSH_HOST_KEY_ALGOS,
  CONTAINER_TYPED_KEYS,
  HOST_TYPED_KEYS,
  uniqueKeyTemplate,
} from './schema.js';
export type {
  AppConfig,
  AppConfigInput,
  SshConfig,
  AuthConfig,
  DockerConfig,
  DockerExecutionConfig,
  DockerContainerConfig,
  DockerHostConfig,
  SecurityConfig,
  EnvPolicy,
  LogConfig,
} from './schema.js';
export { loadConfigFile, loadConfigSource, parseConfig, embeddedDefaults, resolveConfigPath, CONFIG_PATH_ENV } from './load.js';
export type { ConfigSource, KeyLocator } from './load.js';
export { filterEnv, matchesEnvPattern } from './env-policy.js';
export { parseListenAddress, durationToMs, parseByteSize } from './value-parsers.js';
export type { ListenAddress } from './value-parsers.js';
export { formatKeyPath, describeIssues } from './config-issues.js';
export type { ConfigProblem } from './config-issues.js';
export { brokerSchema, BROKER_SECRET_NAME_PATTERNS } from './schema.js';
export type { BrokerConfig } from './schema.js';
export { applyEnvOverrides, PROVISION_KEYS_ENV, REDIS_URL_ENV } from './load.js';
export { mergeConnectionConfig, CONNECTION_CONFIG_SECTIONS } from './merge.js';
export { createConfigWebhook } from './config-webhook.js';
export type { ConfigWebhook, ConfigWebhookDeps, ConfigAnswer } from './config-webhook.js';
export { configServerSchema } from './schema.js';
export type { ConfigServerConfig } from './schema.js';
export { configWarnings } from './compat-warnings.js';
export type { ConfigWarning } from './compat-warnings.js';
