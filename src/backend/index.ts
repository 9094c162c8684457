export type * from './backend.js';
export * from './file-error.js';
