export * from './session-store.js';
export * from './memory.js';
export * from './redis.js';
