export { createSshProxyBackend } from './sshproxy-backend.js';
export { fingerprintOf } from './host-key.js';
export type { SshProxyBackendOptions, SshProxyAlgorithms } from './options.js';
