import { createReadStream, existsSync } from 'node:fs';
import { open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { AuditType } from './events.js';
import { BufferSink } from './file-sink.js';
import { nsToIso } from './ns-clock.js';
import { HashChain } from './hash-chain.js';
import { BINARY_FILE, type AuditMessage } from './format/binary-format.js';
import { scanBinary, type BinaryScan, type SealInfo } from './format/binary-reader.js';
import { BinaryWriter } from './format/binary-writer.js';
import { BINARY_SPOOL_FILE, compressBinaryFile } from './format/binary-compress.js';
import { COMMANDS_FILE } from './commands/command-log.js';
import { RecordingDeriver, fileSinks } from './derive.js';
import {
  MANIFEST_FILE,
  STATE_FILE,
  readManifest,
  recordingDigest,
  stateSchema,
  writeJsonDurably,
  type FileEntry,
  type Identity,
  type Manifest,
  type RecordingState,
} from './manifest.js';

export interface RecordingFormats {
  /** Store the binary recording (audit.airlock). */
  readonly binary: boolean;
  /** Store one asciicast per session channel. */
  readonly asciicast: boolean;
}

async function readState(dir: string): Promise<RecordingState> {
  try {
    return stateSchema.parse(JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')));
  } catch {
    // The state file never reached the disk: the directory name is the connection id.
    const s = await stat(dir);
    return { connectionId: basename(dir), remoteAddress: 'unknown', startedAt: s.birthtime.toISOString() };
  }
}

/** Seals the spool file of an unsealed recording directory (fast: no derivation, no compression). */
export async function sealSpool(dir: string, reason: string): Promise<void> {
  const spool = join(dir, BINARY_SPOOL_FILE);
  if (existsSync(join(dir, MANIFEST_FILE)) || !existsSync(spool)) return;
  await ensureSealed(spool, (await readState(dir)).connectionId, reason);
}

/** Removes what an interrupted earlier attempt may have left. */
async function removeDerived(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (/^channel-\d+\.cast$/.test(name) || name === COMMANDS_FILE || name.endsWith('.tmp') || name === BINARY_FILE) await rm(join(dir, name), { force: true });
  }
}

/**
 * Gives an unsealed spool file its Seal: it is cut after its last complete message (a crash can
 * leave half of one) and a Seal marked incomplete, with the reason, is appended on the same chain,
 * so every earlier checkpoint still verifies. A file that has its seal is left alone.
 */
export async function ensureSealed(spool: string, connectionId: string, reason: string): Promise<SealInfo> {
  let lastNs = 0n;
  let scan: BinaryScan | undefined;
  try {
    scan = await scanBinary(createReadStream(spool), (m) => void (lastNs = m.timestampNs), { raw: true });
  } catch {
    scan = undefined; // not even a header reached the disk
  }
  if (scan?.seal && !scan.truncated && scan.problems.length === 0) return scan.seal;
  const fh = await open(spool, scan ? 'r+' : 'w+');
  try {
    const validBytes = scan?.validBytes ?? 0;
    await fh.truncate(validBytes);
    const sink = new BufferSink();
    const writer = new BinaryWriter({
      connectionId,
      sink,
      writeHeader: scan === undefined,
      ...(scan ? { chain: HashChain.resume(scan.chain, scan.messages) } : {}),
    });
    const { digest } = writer.seal(lastNs, { complete: false, reason });
    await fh.write(sink.toBuffer(), 0, undefined, validBytes);
    await fh.sync();
    return { complete: false, reason, digest };
  } finally {
    await fh.close();
  }
}

/**
 * Seals a recording directory on the spool, the one way for every path: after a normal close
 * (the spool file already ends with its Seal), after a write failure, and at start-up for what
 * a killed gateway left (`reason` says why it is incomplete). From the uncompressed spool file
 * it derives the asciicasts and the command log, compresses the binary, writes the manifest
 * (its presence means "sealed") and removes the spool file. Everything that reached the disk
 * is kept. A recording already sealed is returned as it is.
 */
export async function sealRecording(dir: string, reason: string, options: { formats?: RecordingFormats; spoolSealed?: boolean } = {}): Promise<Manifest> {
  const manifestPath = join(dir, MANIFEST_FILE);
  const spool = join(dir, BINARY_SPOOL_FILE);
  if (existsSync(manifestPath)) {
    await rm(spool, { force: true });
    return readManifest(dir);
  }
  const state = await readState(dir);
  const wanted: RecordingFormats = options.formats ?? state.formats ?? { binary: true, asciicast: false };
  await removeDerived(dir);
  const files: FileEntry[] = [];
  let seal: SealInfo = { complete: false, reason, digest: '' };
  let identity: Identity | undefined = state.identity;
  let lastNs: bigint | undefined;
  let channels: Manifest['channels'] = [];
  if (existsSync(spool)) {
    // After a normal close the writer sealed the spool file: no extra pass over it.
    if (!options.spoolSealed) seal = await ensureSealed(spool, state.connectionId, reason);
    const deriver = new RecordingDeriver(fileSinks(dir), { casts: wanted.asciicast, commands: true });
    let messages = 0;
    const scan = await scanBinary(
      createReadStream(spool),
      (m: AuditMessage) => {
        messages++;
        lastNs = m.timestampNs;
        if (m.type === AuditType.Identity && !identity) identity = m.payload as Identity;
        deriver.message(m);
      },
      { raw: true },
    );
    if (options.spoolSealed) {
      if (!scan.seal || scan.truncated || scan.problems.length > 0) throw new Error(`${spool} is not sealed: ${scan.problems.join('; ') || 'no seal'}`);
      seal = scan.seal;
    }
    const derived = await deriver.finish();
    channels = derived.channels;
    if (wanted.binary) {
      const { bytes, sha256 } = await compressBinaryFile(spool, join(dir, BINARY_FILE));
      files.push({ name: BINARY_FILE, kind: 'binary', bytes, sha256, messages, chain: seal.digest });
    }
    files.push(...derived.files);
  }
  const manifest: Manifest = {
    airlockRecording: 1,
    connectionId: state.connectionId,
    remoteAddress: state.remoteAddress,
    startedAt: state.startedAt,
    endedAt: lastNs !== undefined ? nsToIso(lastNs) : state.startedAt,
    ...(identity ? { identity } : {}),
    complete: seal.complete,
    ...(seal.complete ? {} : { incompleteReason: seal.reason ?? reason }),
    dropped: seal.dropped ?? { messages: 0, bytes: 0 },
    channels,
    files,
    digest: recordingDigest({ connectionId: state.connectionId, complete: seal.complete, files }),
  };
  await writeJsonDurably(dir, MANIFEST_FILE, manifest);
  await rm(spool, { force: true });
  return manifest;
}
