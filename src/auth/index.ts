export type * from './provider.js';
export * from './chain.js';
