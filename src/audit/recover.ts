import { createReadStream, existsSync } from 'node:fs';
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { AuditType } from './events.js';
import { textChain } from './hash-chain.js';
import { drain, hashingTap } from './hashing-tap.js';
import { nsToIso } from './ns-clock.js';
import { BINARY_FILE, binaryHeader, type AuditMessage } from './format/binary-format.js';
import { HashChain } from './hash-chain.js';
import { scanBinary } from './format/binary-reader.js';
import { parseCast } from './format/asciicast.js';
import { COMMANDS_FILE } from './commands/command-log.js';
import {
  MANIFEST_FILE,
  STATE_FILE,
  readManifest,
  recordingDigest,
  stateSchema,
  writeJsonDurably,
  type ChannelEntry,
  type FileEntry,
  type Manifest,
  type RecordingState,
} from './manifest.js';

const CAST_NAME = /^channel-(\d+)\.cast$/;
/** Chain of a binary file whose header did not even reach the disk. */
const EMPTY_CHAIN = new HashChain(binaryHeader()).hex;

async function readState(dir: string): Promise<RecordingState> {
  try {
    return stateSchema.parse(JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')));
  } catch {
    // The gateway died before the state file reached the disk: the directory name is the id.
    const s = await stat(dir);
    return { connectionId: basename(dir), remoteAddress: 'unknown', startedAt: s.birthtime.toISOString() };
  }
}

/** Cuts a text file after its last complete line (a crash can leave half a line). */
async function repairText(path: string): Promise<Buffer> {
  const content = await readFile(path);
  const end = content.lastIndexOf(0x0a) + 1;
  if (end === content.length) return content;
  const kept = content.subarray(0, end);
  await writeFile(path, kept);
  return kept;
}

function textEntry(name: string, kind: FileEntry['kind'], content: Buffer): FileEntry {
  const { chain, lines } = textChain(content);
  return { name, kind, bytes: content.length, sha256: createHash('sha256').update(content).digest('hex'), messages: lines, chain };
}

class ChannelCollector {
  readonly channels = new Map<number, ChannelEntry>();
  readonly #ptys = new Map<number, NonNullable<ChannelEntry['pty']>>();
  lastNs: bigint | undefined;
  identity: Manifest['identity'];

  add(m: AuditMessage): void {
    this.lastNs = m.timestampNs;
    const p = m.payload;
    if (m.type === AuditType.Identity) {
      this.identity = p as Manifest['identity'];
      return;
    }
    if (m.channelId === null) return;
    const id = m.channelId;
    const c = this.channels.get(id);
    switch (m.type) {
      case AuditType.ChannelRequestPty:
        this.#ptys.set(id, { term: String(p['term'] ?? 'xterm'), cols: Number(p['cols'] ?? 80), rows: Number(p['rows'] ?? 24) });
        break;
      case AuditType.ChannelRequestExec:
      case AuditType.ChannelRequestShell:
      case AuditType.ChannelRequestSubsystem: {
        const kind = m.type === AuditType.ChannelRequestExec ? 'exec' : m.type === AuditType.ChannelRequestShell ? 'shell' : 'subsystem';
        const command = kind === 'exec' ? String(p['command'] ?? '') : kind === 'subsystem' ? String(p['subsystem'] ?? '') : undefined;
        const pty = this.#ptys.get(id);
        this.channels.set(id, { channelId: id, kind, ...(command !== undefined ? { command } : {}), ...(pty ? { pty } : {}) });
        break;
      }
      case AuditType.ExitStatus:
        if (c) c.exit = { status: Number(p['exitStatus']) };
        break;
      case AuditType.ExitSignal:
        if (c) c.exit = { signal: String(p['signal']) };
        break;
      default:
    }
  }
}

/**
 * Seals a recording that was not closed normally (the gateway was killed, or the spool filled
 * up): text files are cut after their last complete line, the binary file is kept byte for byte
 * (it ends without its in-band Seal; every message up to the cut decodes and is chained), and
 * the manifest, with `complete: false` and the reason, pins every file's size, SHA-256 and chain.
 * Needs no free space beyond the manifest. A recording already sealed is returned as it is.
 */
export async function sealIncomplete(dir: string, reason: string): Promise<Manifest> {
  if (existsSync(join(dir, MANIFEST_FILE))) return readManifest(dir);
  const state = await readState(dir);
  const collector = new ChannelCollector();
  const files: FileEntry[] = [];
  let dropped = { messages: 0, bytes: 0 };
  let complete = false;
  let incompleteReason: string | undefined = reason;

  const binaryPath = join(dir, BINARY_FILE);
  if (existsSync(binaryPath)) {
    // Left as it is (no rewrite, so no extra space is needed on a full disk): the manifest pins
    // its exact bytes, and the chain covers every message that can be decoded.
    const { tap, result } = hashingTap();
    const input = createReadStream(binaryPath);
    input.on('error', (err) => tap.destroy(err));
    const scan = await scanBinary(input.pipe(tap), (m) => collector.add(m)).catch(() => undefined);
    await drain(tap);
    const { bytes, sha256 } = result();
    if (scan?.seal && scan.problems.length === 0 && !scan.truncated) {
      // Sealed before the crash, only the manifest is missing.
      complete = scan.seal.complete;
      incompleteReason = complete ? undefined : (scan.seal.reason ?? reason);
      if (scan.seal.dropped) dropped = scan.seal.dropped;
    }
    files.push({ name: BINARY_FILE, kind: 'binary', bytes, sha256, messages: scan?.messages ?? 0, chain: scan?.chain ?? EMPTY_CHAIN });
  }

  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const match = CAST_NAME.exec(name);
    if (!match) continue;
    const path = join(dir, name);
    const content = await repairText(path);
    try {
      const cast = parseCast(content.toString('utf8'));
      const channelId = Number(match[1]);
      if (!collector.channels.has(channelId)) {
        const title = cast.header.title;
        collector.channels.set(channelId, { channelId, kind: title ? 'exec' : 'shell', ...(title ? { command: title } : {}) });
      }
      const entry = collector.channels.get(channelId);
      if (entry) entry.cast = name;
      files.push(textEntry(name, 'asciicast', content));
    } catch {
      // Not even a header line made it to the disk.
      await rm(path, { force: true });
    }
  }
  if (existsSync(join(dir, COMMANDS_FILE))) files.push(textEntry(COMMANDS_FILE, 'commands', await repairText(join(dir, COMMANDS_FILE))));

  const identity = state.identity ?? collector.identity;
  const manifest: Manifest = {
    airlockRecording: 1,
    connectionId: state.connectionId,
    remoteAddress: state.remoteAddress,
    startedAt: state.startedAt,
    endedAt: collector.lastNs !== undefined ? nsToIso(collector.lastNs) : state.startedAt,
    ...(identity ? { identity } : {}),
    complete,
    ...(incompleteReason !== undefined ? { incompleteReason } : {}),
    dropped,
    channels: [...collector.channels.values()].sort((a, b) => a.channelId - b.channelId),
    files,
    digest: recordingDigest({ connectionId: state.connectionId, complete, files }),
  };
  await writeJsonDurably(dir, MANIFEST_FILE, manifest);
  return manifest;
}
