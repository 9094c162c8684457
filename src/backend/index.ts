export type * from './backend.js';
export * from './file-error.js';
export { delegateConnection } from './delegating-connection.js';
