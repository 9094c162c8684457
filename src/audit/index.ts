export * from './events.js';
export * from './recorder.js';
