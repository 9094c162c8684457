import { createHash } from 'node:crypto';
import { drain, hashingTap } from './hashing-tap.js';
import { textChain } from './hash-chain.js';
import { BINARY_FILE } from './format/binary-format.js';
import { scanBinary, type BinaryScan } from './format/binary-reader.js';
import { MANIFEST_FILE, STATE_FILE, parseManifest, recordingDigest, type Manifest } from './manifest.js';
import type { RecordingSource } from './source.js';

export interface VerifyResult {
  /** No modification, truncation or reordering was found. */
  readonly ok: boolean;
  readonly complete: boolean;
  readonly incompleteReason?: string;
  readonly digest?: string;
  readonly problems: readonly string[];
  /** What was (not) covered, e.g. "no manifest: only the binary's own chain was checked". */
  readonly notes: readonly string[];
}

async function scanWithHash(source: RecordingSource, name: string): Promise<{ scan: BinaryScan; bytes: number; sha256: string }> {
  const { tap, result } = hashingTap();
  const input = await source.stream(name);
  input.on('error', (err) => tap.destroy(err));
  const scan = await scanBinary(input.pipe(tap));
  await drain(tap);
  return { scan, ...result() };
}

/**
 * `sealedByManifest`: the recording was sealed as incomplete after a crash or a full disk, so
 * its binary legitimately ends without an in-band seal; the manifest pins its exact bytes.
 */
function binaryProblems(scan: BinaryScan, sealedByManifest = false): string[] {
  const problems = [...scan.problems];
  if (scan.truncated && !(sealedByManifest && !scan.seal)) {
    problems.push(scan.seal ? 'the binary recording ends early' : 'the binary recording is truncated (no seal: data is missing at the end)');
  }
  return problems;
}

/**
 * Checks a recording against its manifest: every listed file is present with the listed size
 * and SHA-256, its message chain recomputes to the listed value, the binary's in-band checkpoints
 * and seal agree with the chain, nothing unlisted was added, and the manifest digest (and the
 * `expectedDigest` from the gateway log, when given) matches.
 */
export async function verifyRecording(source: RecordingSource, expectedDigest?: string): Promise<VerifyResult> {
  const names = await source.list();
  const problems: string[] = [];
  const notes: string[] = [];
  if (!names.includes(MANIFEST_FILE)) {
    const binary = names.find((n) => n.endsWith('.airlock'));
    if (!binary) return { ok: false, complete: false, problems: ['no manifest.json and no binary recording: nothing to verify against'], notes };
    notes.push("no manifest: only the binary recording's own hash chain, checkpoints and seal were checked");
    const { scan } = await scanWithHash(source, binary);
    problems.push(...binaryProblems(scan));
    if (expectedDigest && scan.seal && scan.seal.digest !== expectedDigest) problems.push(`the digest ${scan.seal.digest} is not the expected ${expectedDigest}`);
    return {
      ok: problems.length === 0,
      complete: scan.seal?.complete ?? false,
      ...(scan.seal?.reason ? { incompleteReason: scan.seal.reason } : {}),
      ...(scan.seal ? { digest: scan.seal.digest } : {}),
      problems,
      notes,
    };
  }

  let manifest: Manifest;
  try {
    manifest = parseManifest((await source.read(MANIFEST_FILE)).toString('utf8'), MANIFEST_FILE);
  } catch (err) {
    return { ok: false, complete: false, problems: [(err as Error).message], notes };
  }
  const listed = new Set(manifest.files.map((f) => f.name));
  for (const name of names) {
    if (name !== MANIFEST_FILE && name !== STATE_FILE && !listed.has(name)) problems.push(`${name} is not listed in the manifest (added after sealing)`);
  }
  for (const f of manifest.files) {
    if (!names.includes(f.name)) {
      problems.push(`${f.name} is missing`);
      continue;
    }
    let bytes: number;
    let sha256: string | undefined;
    let chain: string;
    let messages: number;
    if (f.kind === 'binary') {
      const r = await scanWithHash(source, f.name).catch((err: unknown) => {
        problems.push(`${f.name}: ${(err as Error).message}`);
        return undefined;
      });
      if (!r) continue;
      ({ bytes, sha256 } = r);
      chain = r.scan.chain;
      messages = r.scan.messages;
      for (const p of binaryProblems(r.scan, !manifest.complete)) problems.push(`${f.name}: ${p}`);
      if (!r.scan.seal && !manifest.complete) notes.push(`${f.name} ends without its in-band seal (the gateway stopped or the disk filled); the manifest seals it`);
      if (r.scan.seal && r.scan.seal.complete !== manifest.complete) problems.push(`${f.name}: its seal says complete=${r.scan.seal.complete}, the manifest says ${manifest.complete}`);
    } else {
      const content = await source.read(f.name);
      bytes = content.length;
      // The line chain covers every byte of a text file; a SHA-256 is compared when listed.
      sha256 = f.sha256 === undefined ? undefined : createHash('sha256').update(content).digest('hex');
      ({ chain, lines: messages } = textChain(content));
    }
    if (bytes !== f.bytes) problems.push(`${f.name}: ${bytes} bytes, the manifest says ${f.bytes} (truncated or extended)`);
    if (f.kind === 'binary' && f.sha256 === undefined) problems.push(`${f.name}: the manifest lists no SHA-256 for it`);
    if (sha256 !== f.sha256) problems.push(`${f.name}: content differs from the manifest's SHA-256 (modified)`);
    if (messages !== f.messages) problems.push(`${f.name}: ${messages} messages, the manifest says ${f.messages}`);
    if (chain !== f.chain) problems.push(`${f.name}: the hash chain does not match (modified, removed or reordered messages)`);
  }
  const digest = recordingDigest(manifest);
  if (digest !== manifest.digest) problems.push('the manifest digest does not match its file list (the manifest was modified)');
  if (expectedDigest && expectedDigest !== manifest.digest) problems.push(`the recording digest ${manifest.digest} is not the expected ${expectedDigest}`);
  if (!expectedDigest) notes.push(`compare the digest with the "recording sealed" gateway log line or the object metadata airlock-digest to detect a rewritten recording`);
  if (!names.includes(BINARY_FILE) && manifest.files.length > 0) notes.push('no binary recording: text files were checked against the manifest only');
  return {
    ok: problems.length === 0,
    complete: manifest.complete,
    ...(manifest.incompleteReason ? { incompleteReason: manifest.incompleteReason } : {}),
    digest: manifest.digest,
    problems,
    notes,
  };
}
