import type { AppConfig } from './schema.js';
import { parseConfig } from './parse-config.js';

/**
 * The demo configuration `airlock serve` uses when no config file is given: local-only listener,
 * public-key login against a local authorized_keys file, the demo image. Everything else is the
 * schema default. Kept as raw input and parsed like a file so it can never drift from the schema.
 */
const EMBEDDED_DEMO_CONFIG = {
  ssh: { listen: '127.0.0.1:2222' },
  auth: {
    password: { method: 'none' },
    publicKey: { method: 'authorizedKeys', authorizedKeys: '.airlock/authorized_keys' },
  },
  docker: { execution: { container: { image: 'airlock-demo:latest' } } },
};

/** A fresh copy on every call: callers may not share (or mutate) one config object. */
export function embeddedDefaults(): AppConfig {
  return parseConfig(structuredClone(EMBEDDED_DEMO_CONFIG), 'embedded defaults');
}
