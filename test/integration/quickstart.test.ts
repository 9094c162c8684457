/**
 * The README's first quick-start command as a new user runs it: `scripts/quickstart.sh` (set-up,
 * then `airlock serve` on its embedded defaults on 127.0.0.1:2222 with the Debian demo image),
 * a login with the user's own default key and no flags but the port, and Ctrl-C. Runs with a
 * fresh HOME, so the script generates the key itself, as on a new machine.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/tmp.js';
import { managedContainers } from '../helpers/docker.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const KEYS = join(ROOT, '.airlock/authorized_keys');
const PORT = 2222;

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolvePort(true);
    });
    socket.once('error', () => resolvePort(false));
  });
}

describe('quick start: scripts/quickstart.sh', () => {
  let home: { path: string; cleanup: () => Promise<void> };
  let keysBefore: string | undefined;
  let gateway: ChildProcess | undefined;
  let output = '';

  before(async () => {
    // The quick start's port is fixed by design (the README prints `ssh -p 2222`): a gateway a
    // developer left running there would answer instead of the one under test.
    assert.equal(await portInUse(PORT), false, `127.0.0.1:${PORT} is in use: stop the gateway running there, then re-run`);
    home = await tempDir('airlock-quickstart-home-');
    keysBefore = await readFile(KEYS, 'utf8').catch(() => undefined);
  });
  after(async () => {
    if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
      gateway.kill('SIGKILL');
      await once(gateway, 'exit');
    }
    // Give the developer's authorized_keys back as it was (the script added this run's key).
    if (keysBefore === undefined) await rm(KEYS, { force: true });
    else await writeFile(KEYS, keysBefore);
    await home?.cleanup();
  });

  it('sets up, serves on the embedded defaults, lets the user in with their own key, stops on Ctrl-C leaving nothing', async () => {
    gateway = spawn('scripts/quickstart.sh', [], { cwd: ROOT, env: { ...process.env, HOME: home.path }, stdio: ['ignore', 'pipe', 'pipe'] });
    const listening = new Promise<void>((resolveListening, reject) => {
      const onData = (d: Buffer) => {
        output += d.toString();
        if (output.includes('"msg":"listening"')) resolveListening();
      };
      gateway!.stdout!.on('data', onData);
      gateway!.stderr!.on('data', onData);
      gateway!.once('exit', (code) => reject(new Error(`quickstart exited (${code}) before listening:\n${output}`)));
    });
    await listening;
    assert.match(output, /ssh -p 2222 demo@127\.0\.0\.1/, 'it tells the user how to connect');
    const key = join(home.path, '.ssh/id_ed25519');
    assert.match(output, /generated .*id_ed25519/);

    // What the README says to type, plus only what a script needs to run unattended.
    const knownHosts = join(home.path, 'known_hosts');
    const { stdout } = await run('ssh', [
      '-p', String(PORT),
      '-i', key,
      '-o', 'IdentitiesOnly=yes',
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=accept-new',
      '-o', `UserKnownHostsFile=${knownHosts}`,
      '-F', '/dev/null',
      'demo@127.0.0.1',
      'id -un; . /etc/os-release; echo "$ID"; test -x /usr/lib/openssh/sftp-server && echo sftp',
    ], { env: { ...process.env, HOME: home.path } });
    assert.deepEqual(stdout.trim().split('\n'), ['dev', 'debian', 'sftp'], 'a non-root shell in the Debian demo image');

    const exited = once(gateway, 'exit');
    gateway.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, output);
    const gatewayId = /"gatewayId":"([^"]+)"/.exec(output)?.[1];
    assert.ok(gatewayId, 'the gateway logs its id');
    assert.deepEqual(await managedContainers({ gatewayId }), [], 'Ctrl-C removes every container the quick start created');
  });
});
