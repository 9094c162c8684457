#!/usr/bin/env node
import { Command } from 'commander';
import { isAirlockError } from '../core/errors.js';
import { runServe } from './serve.js';
import { runConfigCheck } from './config-check.js';
import { registerBrokerCommands } from './broker.js';
import { registerAuditCommands } from './audit.js';

const program = new Command();
program.name('airlock').description('SSH gateway: every connection gets its own fresh, audited, throw-away container').version('0.1.0');

program
  .command('serve')
  .description('run the SSH gateway (embedded demo defaults when no config is given)')
  .option('-c, --config <file>', 'YAML configuration file (env AIRLOCK_CONFIG)')
  .action(async (opts: { config?: string }) => {
    await runServe(opts.config ? { config: opts.config } : {});
  });

const config = program.command('config').description('configuration tools');
config
  .command('check <file>')
  .description('validate a configuration file; exits non-zero when it is invalid')
  .action(async (file: string) => {
    process.exitCode = await runConfigCheck(file, process.stdout, process.stderr);
  });

registerBrokerCommands(program);
registerAuditCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (isAirlockError(err)) {
    process.stderr.write(`airlock: ${err.message} [${err.code}]\n`);
  } else {
    process.stderr.write(`airlock: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
});
