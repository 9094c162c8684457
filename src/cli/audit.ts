/**
 * `airlock audit ls|replay|commands|export|verify`: find, play and check recordings in a local
 * storage directory or in S3. S3 settings come from the gateway config (`-c`, its audit.s3
 * section) and/or flags; credentials from the config or the AWS environment variables.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { S3Client } from '@aws-sdk/client-s3';
import { loadConfigFile, resolveConfigPath } from '../config/index.js';
import { AirlockError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import {
  BINARY_FILE,
  COMMANDS_FILE,
  MANIFEST_FILE,
  binaryToCasts,
  binaryToJsonLines,
  commandsFromBinary,
  createS3Client,
  formatCommand,
  formatListing,
  isS3Url,
  listLocal,
  listS3,
  localSource,
  matchesFilter,
  parseCast,
  parseCommandLog,
  replayCast,
  s3Source,
  sortByStart,
  verifyRecording,
  type CommandEntry,
  type ListFilter,
  type ParsedCast,
  type RecordingSource,
} from '../audit/index.js';

interface S3Flags {
  config?: string;
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
}

interface Where {
  s3?: S3Client;
  /** Default location from the config: the file directory or s3://bucket/. */
  defaultLocation?: string;
}

async function where(flags: S3Flags): Promise<Where> {
  const path = resolveConfigPath(flags.config, process.env);
  const audit = path ? (await loadConfigFile(path)).audit : undefined;
  const s3 = audit?.s3;
  const client = createS3Client({
    region: flags.region ?? s3?.region ?? process.env['AWS_REGION'] ?? 'us-east-1',
    pathStyleAccess: flags.pathStyle ?? s3?.pathStyleAccess ?? Boolean(flags.endpoint),
    ...((flags.endpoint ?? s3?.endpoint) ? { endpoint: (flags.endpoint ?? s3?.endpoint) as string } : {}),
    ...(s3?.accessKey && s3.secretKey ? { accessKey: s3.accessKey, secretKey: s3.secretKey } : {}),
  });
  const defaultLocation =
    audit?.storage === 's3' && s3?.bucket ? `s3://${s3.bucket}/` : audit?.storage === 'file' ? audit.file.directory : undefined;
  return { s3: client, ...(defaultLocation ? { defaultLocation } : {}) };
}

async function openSource(ref: string, flags: S3Flags): Promise<RecordingSource> {
  if (isS3Url(ref)) {
    const { s3 } = await where(flags);
    return s3Source(s3 as S3Client, ref);
  }
  return localSource(ref);
}

function s3Options(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'gateway config: its audit section gives the storage location and S3 settings')
    .option('--endpoint <url>', 'S3 endpoint (S3-compatible servers)')
    .option('--region <region>', 'S3 region')
    .option('--path-style', 'path-style S3 addressing (default when --endpoint is given)');
}

function parseSince(value: string): Date {
  const days = /^(\d+)d$/.exec(value);
  if (days) return new Date(Date.now() - Number(days[1]) * 86_400_000);
  if (/^\d+(?:\.\d+)?(?:ms|s|m|h)$/.test(value)) return new Date(Date.now() - parseDuration(value));
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new InvalidArgumentError('use a date (2026-11-01, 2026-11-01T10:00Z) or an age (90m, 24h, 7d)');
  return new Date(t);
}

/** Cast of one channel: from a .cast file of the recording, else converted from the binary. */
async function castOf(source: RecordingSource, channel: number | undefined): Promise<{ channelId: number; cast: ParsedCast; count: number }> {
  const names = await source.list();
  const castNames = names.filter((n) => n.endsWith('.cast'));
  if (castNames.length > 0 && (!names.includes(BINARY_FILE) || channel === undefined || castNames.includes(`channel-${channel}.cast`))) {
    const ids = castNames.map((n) => Number(/(\d+)\.cast$/.exec(n)?.[1] ?? 0)).sort((a, b) => a - b);
    const id = channel ?? ids[0] ?? 0;
    const name = castNames.length === 1 && channel === undefined ? (castNames[0] as string) : `channel-${id}.cast`;
    if (!castNames.includes(name)) throw new AirlockError('RECORDING_NOT_FOUND', `channel ${id} has no terminal recording (channels: ${ids.join(', ')})`);
    return { channelId: id, cast: parseCast((await source.read(name)).toString('utf8')), count: castNames.length };
  }
  const binary = names.find((n) => n.endsWith('.airlock'));
  if (!binary) throw new AirlockError('RECORDING_NOT_FOUND', `${source.location} holds no terminal recording (.cast) and no binary recording (.airlock)`);
  const { casts } = await binaryToCasts(await source.stream(binary));
  if (casts.length === 0) throw new AirlockError('RECORDING_NOT_FOUND', `${source.location} has no shell or exec session to replay`);
  const pick = channel === undefined ? casts[0] : casts.find((c) => c.channelId === channel);
  if (!pick) throw new AirlockError('RECORDING_NOT_FOUND', `channel ${channel} has no terminal session (channels: ${casts.map((c) => c.channelId).join(', ')})`);
  return { channelId: pick.channelId, cast: parseCast(pick.cast), count: casts.length };
}

function channelOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('use a channel number (0, 1, ...)');
  return n;
}

function speedOption(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('use a number ≥ 0 (2 = twice as fast, 0 = no pauses)');
  return n;
}

function metaOption(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('use key=value');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('find, replay, export and verify session recordings (local directory or s3://bucket/prefix)');

  s3Options(
    audit
      .command('ls [location]')
      .description('list recordings (newest last), filtered by metadata')
      .option('--commit <sha>', 'commit SHA or prefix (metadata commit_sha)')
      .option('--pr <number>', 'pull request (metadata pr_number)')
      .option('--actor <name>', 'metadata actor or the authenticated user')
      .option('--session <id>', 'debug session id (metadata session_id)')
      .option('--user <name>', 'authenticated user name')
      .option('--meta <key=value>', 'any metadata value (repeatable)', metaOption)
      .option('--since <when>', 'started at or after: a date/time or an age such as 90m, 24h, 7d', parseSince)
      .option('--until <when>', 'started at or before', parseSince)
      .option('--json', 'one manifest per line as JSON'),
  ).action(
    async (
      location: string | undefined,
      o: S3Flags & { commit?: string; pr?: string; actor?: string; session?: string; user?: string; meta?: Record<string, string>; since?: Date; until?: Date; json?: boolean },
    ) => {
      const w = await where(o);
      const loc = location ?? w.defaultLocation;
      if (!loc) throw new AirlockError('RECORDING_NOT_FOUND', 'give a location (a directory or s3://bucket/prefix) or a gateway config with -c');
      const filter: ListFilter = {
        ...(o.commit ? { commit: o.commit } : {}),
        ...(o.pr ? { pr: o.pr } : {}),
        ...(o.actor ? { actor: o.actor } : {}),
        ...(o.session ? { session: o.session } : {}),
        ...(o.user ? { user: o.user } : {}),
        meta: o.meta ?? {},
        ...(o.since ? { since: o.since } : {}),
        ...(o.until ? { until: o.until } : {}),
      };
      const all = isS3Url(loc) ? await listS3(w.s3 as S3Client, loc) : await listLocal(loc);
      const list = sortByStart(all.filter((r) => matchesFilter(r.manifest, filter)));
      if (o.json) for (const r of list) process.stdout.write(JSON.stringify({ location: r.location, ...r.manifest }) + '\n');
      else if (list.length === 0) process.stderr.write(`no recordings match (${all.length} under ${loc})\n`);
      else process.stdout.write(formatListing(list).join('\n') + '\n');
    },
  );

  s3Options(
    audit
      .command('replay <recording>')
      .description('play a session in this terminal at the recorded pace (a directory, .cast/.airlock file, or s3:// prefix)')
      .option('--channel <n>', 'session channel to play (default: the first)', channelOption)
      .option('--speed <factor>', 'playback speed factor; 0 = no pauses', speedOption, 1)
      .option('--max-wait <seconds>', 'cap idle pauses at this many seconds', speedOption),
  ).action(async (ref: string, o: S3Flags & { channel?: number; speed: number; maxWait?: number }) => {
    const speed = o.speed;
    const source = await openSource(ref, o);
    const { channelId, cast, count } = await castOf(source, o.channel);
    const last = cast.events[cast.events.length - 1]?.[0] ?? 0;
    process.stderr.write(`airlock: replaying channel ${channelId}${count > 1 ? ` (1 of ${count}; pick with --channel)` : ''}, ${last.toFixed(1)} s recorded, speed ${speed || 'instant'}\n`);
    await replayCast(cast, (text) => process.stdout.write(text), { speed, ...(o.maxWait ? { maxWaitMs: Number(o.maxWait) * 1000 } : {}) });
  });

  s3Options(
    audit
      .command('commands <recording>')
      .description('print the commands run in a recording (exec requests and lines typed at shells)')
      .option('--json', 'one JSON object per command'),
  ).action(async (ref: string, o: S3Flags & { json?: boolean }) => {
    const source = await openSource(ref, o);
    const names = await source.list();
    let entries: CommandEntry[];
    if (names.includes(COMMANDS_FILE)) entries = parseCommandLog((await source.read(COMMANDS_FILE)).toString('utf8'));
    else if (names.includes(MANIFEST_FILE) && !names.some((n) => n.endsWith('.airlock'))) entries = [];
    else {
      const binary = names.find((n) => n.endsWith('.airlock'));
      if (!binary) throw new AirlockError('RECORDING_NOT_FOUND', `${source.location} holds no command log and no binary recording`);
      entries = await commandsFromBinary(await source.stream(binary));
    }
    for (const e of entries) process.stdout.write((o.json ? JSON.stringify(e) : formatCommand(e)) + '\n');
  });

  s3Options(
    audit
      .command('export <recording>')
      .description('convert a binary recording: --format cast (asciinema v2, per channel) or json (every message)')
      .addOption(new Option('--format <format>', 'cast (asciinema v2) or json (every message)').choices(['cast', 'json']).default('cast'))
      .option('--channel <n>', 'only this session channel (cast)', channelOption)
      .option('-o, --output <path>', 'output file (or directory for several casts); default stdout'),
  ).action(async (ref: string, o: S3Flags & { format: string; channel?: number; output?: string }) => {
    const source = await openSource(ref, o);
    const names = await source.list();
    const binary = names.find((n) => n.endsWith('.airlock'));
    if (o.format === 'json') {
      if (!binary) throw new AirlockError('RECORDING_NOT_FOUND', `${source.location} has no binary recording`);
      const lines: string[] = [];
      await binaryToJsonLines(await source.stream(binary), (l) => (o.output ? lines.push(l) : process.stdout.write(l + '\n')));
      if (o.output) await writeFile(o.output, lines.join('\n') + '\n');
      return;
    }
    let casts: Array<{ channelId: number; cast: string }>;
    if (binary) casts = (await binaryToCasts(await source.stream(binary))).casts;
    else {
      casts = [];
      for (const n of names.filter((x) => x.endsWith('.cast'))) casts.push({ channelId: Number(/(\d+)\.cast$/.exec(n)?.[1] ?? 0), cast: (await source.read(n)).toString('utf8') });
    }
    if (o.channel !== undefined) casts = casts.filter((c) => c.channelId === o.channel);
    if (casts.length === 0) throw new AirlockError('RECORDING_NOT_FOUND', `${source.location} has no terminal session${o.channel !== undefined ? ` on channel ${o.channel}` : ''}`);
    if (casts.length === 1) {
      const only = casts[0] as { cast: string };
      if (o.output) await writeFile(o.output, only.cast);
      else process.stdout.write(only.cast);
      return;
    }
    if (!o.output) {
      process.stderr.write(`airlock: the recording has ${casts.length} sessions (channels ${casts.map((c) => c.channelId).join(', ')}): pick one with --channel, or give a directory with -o\n`);
      process.exitCode = 2;
      return;
    }
    await mkdir(o.output, { recursive: true });
    for (const c of casts) await writeFile(join(o.output, `channel-${c.channelId}.cast`), c.cast);
    process.stderr.write(`wrote ${casts.map((c) => `channel-${c.channelId}.cast`).join(', ')} to ${o.output}\n`);
  });

  s3Options(
    audit
      .command('verify <recording>')
      .description('check the hash chain, seal and manifest: exits 1 on any modified, truncated or reordered byte')
      .option('--digest <sha256>', 'the digest from the "recording sealed" log line (detects a rewritten recording)')
      .option('--json', 'print the result as JSON'),
  ).action(async (ref: string, o: S3Flags & { digest?: string; json?: boolean }) => {
    const source = await openSource(ref, o);
    const result = await verifyRecording(source, o.digest);
    if (o.json) process.stdout.write(JSON.stringify({ location: source.location, ...result }) + '\n');
    else {
      if (result.ok) {
        const status = result.complete ? 'complete' : `INCOMPLETE: ${result.incompleteReason ?? 'not sealed normally'}`;
        process.stdout.write(`OK ${source.location}: intact, ${status}\n`);
      } else {
        process.stdout.write(`FAILED ${source.location}: the recording was modified or damaged\n`);
        for (const p of result.problems) process.stdout.write(`  - ${p}\n`);
      }
      if (result.digest) process.stdout.write(`  digest ${result.digest}\n`);
      for (const n of result.notes) process.stdout.write(`  note: ${n}\n`);
    }
    if (!result.ok) process.exitCode = 1;
  });
}

