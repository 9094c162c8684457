export type * from './provider.js';
export * from './chain.js';
export * from './public-key.js';
export * from './metadata-merge.js';
export * from './webhook.js';
export * from './authorized-keys.js';
export * from './token.js';
export * from './keyboard-interactive.js';
export * from './authz.js';
