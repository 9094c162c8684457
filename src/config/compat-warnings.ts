/**
 * ContainerSSH settings Airlock accepts so a copied config still loads, but applies more
 * narrowly than the name suggests. Each is reported once at start-up (and by `airlock config
 * check`), never silently.
 */
import type { SecurityConfig } from './schema.js';

export interface ConfigWarning {
  /** Dotted key path, e.g. security.forwarding.forwardingMode. */
  readonly key: string;
  /** Constant per kind of warning (a log message); the key says where. */
  readonly message: string;
}

const FORWARDING_KEYS = ['forwardingMode', 'reverseForwardingMode', 'socketForwardingMode', 'socketListenMode', 'x11ForwardingMode'] as const;

/** `security.forwarding.*: filter` has no list to filter by here: it is applied as `disable`. */
export function configWarnings(config: { readonly security: SecurityConfig }): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  for (const name of FORWARDING_KEYS) {
    if (config.security.forwarding[name] !== 'filter') continue;
    warnings.push({
      key: `security.forwarding.${name}`,
      message: 'security.forwarding "filter" is applied as "disable" (Airlock has no forwarding filter): set enable or disable to say which you mean',
    });
  }
  return warnings;
}
