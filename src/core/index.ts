export * from './errors.js';
export * from './clock.js';
export * from './ids.js';
export * from './retry.js';
export * from './lifecycle.js';
export * from './duration.js';
export * from './timeout-signal.js';
