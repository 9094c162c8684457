export * from './server.js';
export * from './host-keys.js';
export type * from './options.js';
export * from './connection-setup.js';
