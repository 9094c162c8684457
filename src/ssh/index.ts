export * from './server.js';
export * from './host-keys.js';
export type * from './options.js';
export * from './auth-rate-limit.js';
