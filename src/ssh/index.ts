export * from './server.js';
export * from './host-keys.js';
export * from './host-certificates.js';
export type * from './options.js';
export * from './auth-rate-limit.js';
export * from './connection-setup.js';
