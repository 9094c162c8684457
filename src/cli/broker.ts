/**
 * `airlock broker`: the provisioning API on its own (gateways share its Redis store), and
 * `airlock provision`: the CI-side client that asks for a debug session and prints the ssh command.
 */
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { loadConfigFile, parseListenAddress, resolveConfigPath } from '../config/index.js';
import { createLogger } from '../observability/logger.js';
import { createBrokerRuntime, DEFAULT_SECRET_NAME_PATTERNS, isEnvName, sanitizeEnv } from '../broker/index.js';
import { AirlockError } from '../core/errors.js';
import { retry } from '../core/retry.js';

/** The env var `airlock provision` reads the provisioning key from (never a flag: flags show in `ps`). */
export const PROVISION_KEY_ENV = 'AIRLOCK_PROVISION_KEY';

export function registerBrokerCommands(program: Command): void {
  program
    .command('broker')
    .description('run the CI-debug provisioning API alone (gateways reach its sessions through Redis)')
    .option('-c, --config <file>', 'YAML configuration file with a broker: section (env AIRLOCK_CONFIG)')
    .action(async (opts: { config?: string }) => {
      await runBroker(opts.config);
    });

  program
    .command('provision')
    .description(`ask a broker for a debug session and print the ssh command (key from $${PROVISION_KEY_ENV})`)
    .requiredOption('--api <url>', 'broker API base URL, e.g. https://airlock.example.com:8080')
    .requiredOption('--image <image>', "the failed build's container image")
    .option('--commit <sha>', 'commit id of the failed build')
    .option('--pr <number>', 'pull/merge request number')
    .option('--actor <name>', 'who the session is for (CI user name)')
    .option('--repository <name>', 'repository, e.g. acme/app')
    .option('--pipeline-run <id>', 'pipeline run / workflow run id')
    .option('--ttl <seconds>', 'session lifetime in seconds (capped by the broker policy, at most 3600)')
    .option('--max-connections <n>', 'concurrent connections allowed (default: broker policy, usually 1)')
    .option('--env <NAME=VALUE>', 'environment variable for the session (repeatable)', collect, [])
    .option('--pass-env', "send this process's environment (secrets stripped here first, then again by the broker)")
    .option('--json', 'print the full JSON answer instead of the ssh command')
    .action(async (opts: ProvisionFlags) => {
      process.exitCode = await runProvision(opts, { env: process.env, stdout: process.stdout, stderr: process.stderr });
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function runBroker(configFlag: string | undefined): Promise<void> {
  const path = resolveConfigPath(configFlag, process.env);
  if (!path) throw new AirlockError('CONFIG_INVALID', 'airlock broker needs a configuration file with a broker: section (--config or AIRLOCK_CONFIG)');
  const config = await loadConfigFile(path);
  if (!config.broker) throw new AirlockError('CONFIG_INVALID', `${path} has no broker: section`);
  if (config.broker.redisUrl === undefined) {
    throw new AirlockError(
      'CONFIG_INVALID',
      'airlock broker runs apart from the gateways, which see its sessions only through Redis: set broker.redisUrl ' +
        '(or REDIS_URL) — or run the API inside `airlock serve` with the in-memory store',
    );
  }
  const logger = createLogger(config.log);
  logger.info({ config: path, pid: process.pid }, 'starting airlock broker');
  const runtime = await createBrokerRuntime({ config: config.broker, logger, sshListen: parseListenAddress(config.ssh.listen) });
  const api = await runtime.startApi();
  if (process.stderr.isTTY) {
    process.stderr.write(`\nAirlock broker API on http://${api.address.address}:${api.address.port} (sessions for ssh ${api.publicHost}:${api.publicPort})\n\n`);
  }
  onSignals(logger, async () => {
    await api.close();
    await runtime.close();
  });
}

function onSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutdown requested');
    stop()
      .then(() => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        logger.flush();
        process.exit(1);
      });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

export interface ProvisionFlags {
  readonly api: string;
  readonly image: string;
  readonly commit?: string;
  readonly pr?: string;
  readonly actor?: string;
  readonly repository?: string;
  readonly pipelineRun?: string;
  readonly ttl?: string;
  readonly maxConnections?: string;
  readonly env: readonly string[];
  readonly passEnv?: boolean;
  readonly json?: boolean;
}

export interface ProvisionIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Give up retrying an unreachable broker after this long. */
  readonly retryForMs?: number;
}

/**
 * Variables that describe the CI machine, not the build: sending them would break the debug
 * container (a runner's PATH or HOME does not exist in the image).
 */
export const HOST_ONLY_VARS: readonly string[] = [
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'PWD', 'OLDPWD', 'HOSTNAME', 'SHLVL', '_', 'TMPDIR', 'TEMP', 'TMP',
  'TERM', 'MAIL', 'LS_COLORS', 'DISPLAY', 'SSH_AUTH_SOCK', 'SSH_CLIENT', 'SSH_CONNECTION', 'SSH_TTY', 'INVOCATION_ID', 'JOURNAL_STREAM',
];

interface ProvisionAnswer {
  session_id: string;
  ssh_command: string;
  expires_at_human: string;
  redacted_vars?: string[];
}

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** `airlock provision`: returns the exit code (0 ok, 1 the broker refused or is unreachable, 2 usage). */
export async function runProvision(flags: ProvisionFlags, io: ProvisionIo): Promise<number> {
  const say = (line: string) => io.stderr.write(`${line}\n`);
  const key = io.env[PROVISION_KEY_ENV];
  if (key === undefined || key.trim() === '') {
    say(`airlock: set ${PROVISION_KEY_ENV} to a provisioning key of the broker`);
    return EXIT_USAGE;
  }
  let url: URL;
  try {
    url = new URL('v1/sessions', flags.api.endsWith('/') ? flags.api : `${flags.api}/`);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    say(`airlock: --api must be an http(s) URL like https://airlock.example.com:8080`);
    return EXIT_USAGE;
  }
  const int = (name: string, v: string | undefined): number | undefined | Error => {
    if (v === undefined) return undefined;
    return /^\d+$/.test(v) ? Number(v) : new Error(`${name} must be a whole number`);
  };
  const ttl = int('--ttl', flags.ttl);
  const maxConnections = int('--max-connections', flags.maxConnections);
  for (const v of [ttl, maxConnections]) {
    if (v instanceof Error) {
      say(`airlock: ${v.message}`);
      return EXIT_USAGE;
    }
  }

  const env: Record<string, string> = {};
  let redacted: string[] = [];
  if (flags.passEnv) {
    const own: Record<string, string> = {};
    for (const [name, value] of Object.entries(io.env)) {
      if (value === undefined || HOST_ONLY_VARS.includes(name) || name === PROVISION_KEY_ENV) continue;
      // Not a shell variable (bash's exported functions are `BASH_FUNC_f%%`): the broker would refuse the whole request.
      if (!isEnvName(name)) continue;
      own[name] = value;
    }
    // Strip here too, so the runner's secrets never even leave it.
    const clean = sanitizeEnv(own, { secretNamePatterns: DEFAULT_SECRET_NAME_PATTERNS, keepEnvNames: [] });
    Object.assign(env, clean.env);
    redacted = clean.redacted.filter((n) => !n.startsWith('AIRLOCK_'));
  }
  for (const pair of flags.env) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      say(`airlock: --env takes NAME=VALUE (got ${JSON.stringify(pair.slice(0, 40))})`);
      return EXIT_USAGE;
    }
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }

  const body = {
    image: flags.image,
    ...(flags.commit ? { commit_sha: flags.commit } : {}),
    ...(flags.pr ? { pr_number: flags.pr } : {}),
    ...(flags.actor ? { actor: flags.actor } : {}),
    ...(flags.repository ? { repository: flags.repository } : {}),
    ...(flags.pipelineRun ? { pipeline_run: flags.pipelineRun } : {}),
    ...(typeof ttl === 'number' ? { ttl_seconds: ttl } : {}),
    ...(typeof maxConnections === 'number' ? { max_connections: maxConnections } : {}),
    ...(Object.keys(env).length > 0 ? { env } : {}),
    ...(redacted.length > 0 ? { redacted_vars: redacted } : {}),
  };

  let status: number;
  let text: string;
  try {
    ({ status, text } = await retry(
      async () => {
        const res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${key.trim()}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          redirect: 'error', // a redirect would re-send the key elsewhere
          signal: AbortSignal.timeout(15_000),
        });
        const t = await res.text();
        // Busy or restarting broker: try again; any other answer is final.
        if (res.status === 502 || res.status === 503 || res.status === 504) throw new Error(`broker answered ${res.status}`);
        return { status: res.status, text: t };
      },
      { deadline: Date.now() + (io.retryForMs ?? 30_000), initialDelayMs: 500 },
    ));
  } catch (err) {
    say(`airlock: the broker at ${url.origin} cannot be reached: ${(err as Error).message}`);
    return EXIT_FAILED;
  }

  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    say(`airlock: the broker answered HTTP ${status} with a body that is not JSON`);
    return EXIT_FAILED;
  }
  if (status !== 201) {
    const a = answer as { error?: string; message?: string; problems?: string[] };
    say(`airlock: provisioning failed: ${a.message ?? `HTTP ${status}`} [${a.error ?? status}]`);
    for (const p of a.problems ?? []) say(`  ${p}`);
    return EXIT_FAILED;
  }
  const a = answer as ProvisionAnswer;
  if (flags.json) {
    io.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    return EXIT_OK;
  }
  io.stdout.write(`${a.ssh_command}\n`);
  say(`Debug session ${a.session_id} expires ${a.expires_at_human}.`);
  if (a.redacted_vars && a.redacted_vars.length > 0) say(`Stripped from its environment: ${a.redacted_vars.join(', ')}`);
  return EXIT_OK;
}
