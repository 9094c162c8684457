export * from './policy.js';
export * from './tokens.js';
export * from './api.js';
export * from './runtime.js';
export * from './store/index.js';
