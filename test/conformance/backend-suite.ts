/**
 * The one behaviour suite every backend and mode must pass (DESIGN.md: "one conformance suite ...
 * run against every backend and mode on real engines"). It goes through the front door only: the
 * real `airlock serve` (startGateway), the real OpenSSH client (ssh, and tmux for a terminal), an
 * auth webhook (real HTTP) that hands out environment and files — and the ssh2 client only for
 * `signal` requests, which OpenSSH cannot send. Nothing here knows which backend runs.
 *
 * A per-backend file calls it:
 *
 *   runBackendConformance('docker (connection mode)', async () => ({
 *     gatewayOverrides: { backend: 'docker', docker: { ... } },
 *     listWorkloads: (gateways) => ...,       // what this run left running, scoped to this run
 *     unavailable: { overrides: { ... }, code: 'BACKEND_UNAVAILABLE' },
 *     cleanup: async () => { ... },
 *   }));
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import { deepMerge, startGateway, type GatewayConfig, type TestGateway } from '../helpers/gateway.js';
import { makeKey, type TestKey } from '../helpers/keys.js';
import { spawnSsh, ssh, sshArgs } from '../helpers/ssh.js';
import { openTerminal } from '../helpers/tmux.js';
import { tempDir } from '../helpers/tmp.js';
import { behaviours, startWebhookServer, type WebhookServer } from '../helpers/webhook-server.js';

export interface ConformanceTarget {
  /**
   * Deep-merged over the suite's gateway config (auth webhook, listen 127.0.0.1:0): selects and
   * configures the backend under test (`backend:`, its section, the mode).
   */
  readonly gatewayOverrides: GatewayConfig;
  /**
   * Ids of the workloads (containers, pods, upstream sessions/processes) this target's gateways
   * have alive right now. Scope it to this run (e.g. a label set in `gatewayOverrides`): other
   * suites may share the engine. Must be `[]` once every connection has closed. `gateways` are
   * the gateways running now: what a gateway holds for no connection (its idle warm pool,
   * which its log tells apart from claimed containers) is not a workload.
   */
  listWorkloads(gateways: readonly TestGateway[]): Promise<string[]>;
  /** Overrides (merged over `gatewayOverrides`) that make the backend unreachable, and the code the user must see. */
  readonly unavailable: { readonly overrides: GatewayConfig; readonly code: string };
  /** An existing directory the session user may write to in the workload (webhook files go below it). Default `/tmp`. */
  readonly scratchDir?: string;
  /** Removes what the setup created (servers, temp dirs); called after the last test. */
  cleanup(): Promise<void>;
}

const USER = 'conformance';

/** Registers a `describe` block with the shared behaviour tests against the target `setup` builds. */
export function runBackendConformance(name: string, setup: () => Promise<ConformanceTarget>): void {
  describe(`backend conformance: ${name}`, () => {
    let target: ConformanceTarget;
    let hook: WebhookServer;
    let gw: TestGateway;
    let key: TestKey;
    let dir: { path: string; cleanup: () => Promise<void> };
    // Unique per run so a stale file from another run can never satisfy the files test.
    const nonce = randomBytes(6).toString('hex');
    let filesDir: string;
    const publicText = `public file ${nonce}\n`;
    const secretText = `secret file ${nonce}\n`;

    before(async () => {
      target = await setup();
      dir = await tempDir('airlock-conformance-');
      key = await makeKey(dir.path, USER);
      filesDir = `${target.scratchDir ?? '/tmp'}/airlock-conformance-${nonce}/sub`;
      hook = await startWebhookServer(
        behaviours.acceptPublicKeys(
          { [USER]: [key.publicLine] },
          {
            environment: { CONFORMANCE_FROM_WEBHOOK: { value: `env-${nonce}` } },
            files: {
              [`${filesDir}/public.txt`]: { value: Buffer.from(publicText).toString('base64') },
              [`${filesDir}/secret.txt`]: { value: Buffer.from(secretText).toString('base64'), sensitive: true },
            },
          },
        ),
      );
      gw = await startGateway(deepMerge(authConfig(hook), target.gatewayOverrides));
    });

    afterEach(async () => {
      // Every test ends with all its connections closed: nothing may outlive them.
      await gw.waitForIdle();
      assert.deepEqual(await target.listWorkloads([gw]), [], 'no workload may outlive its connection');
    });

    after(async () => {
      await gw?.stop();
      await hook?.close();
      await dir?.cleanup();
      try {
        if (target) assert.deepEqual(await target.listWorkloads([]), [], 'leaked workloads at the end of the suite');
      } finally {
        await target?.cleanup();
      }
    });

    const run = (command: string, extra: { input?: string | Buffer; args?: string[] } = {}) =>
      ssh(gw, { user: USER, identity: key.path, command, ...extra });

    it('exec: runs the command and returns its output and exit status', async () => {
      const r = await run('echo hello-conformance; exit 7');
      assert.equal(r.stdout.toString(), 'hello-conformance\n', r.stderr);
      assert.equal(r.code, 7);
      const ok = await run('true');
      assert.equal(ok.code, 0, ok.stderr);
    });

    it('exec: keeps stdout and stderr apart', async () => {
      const r = await run('echo to-out; echo to-err >&2; exit 0');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'to-out\n');
      assert.match(r.stderr, /^to-err$/m);
    });

    it('stdin: every byte arrives and EOF ends the program (cat)', async () => {
      const input = randomBytes(1024 * 1024 + 17);
      const r = await run('cat', { input });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sha256(r.stdout), sha256(input));
      const counted = await run('wc -c', { input: 'twelve bytes' });
      assert.equal(counted.stdout.toString().trim(), '12');
    });

    it('output: a large stream arrives intact', async () => {
      const r = await run('head -c 8000000 /dev/zero | tr "\\0" x');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.length, 8_000_000);
      assert.equal(r.stdout.indexOf('y'), -1);
    });

    it('env: allowed env requests reach the program, others are refused', async () => {
      const r = await run('echo "LANG=$LANG SNEAKY=${SNEAKY:-unset}"', { args: ['-o', 'SetEnv=LANG=C.UTF-8 SNEAKY=1'] });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'LANG=C.UTF-8 SNEAKY=unset\n');
    });

    it('auth webhook: its environment and files are in place before the program runs', async () => {
      const r = await run(
        `echo "ENV=$CONFORMANCE_FROM_WEBHOOK"; cat ${filesDir}/public.txt ${filesDir}/secret.txt; ` +
          `stat -c %a ${filesDir}/public.txt ${filesDir}/secret.txt`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), `ENV=env-${nonce}\n${publicText}${secretText}644\n600\n`);
    });

    it('two session channels on one connection run side by side', async () => {
      const client = await connect(gw, key.path);
      try {
        const [a, b] = await Promise.all([collect(client, 'echo first; exit 3'), collect(client, 'echo second >&2; exit 4')]);
        assert.deepEqual(a, { stdout: 'first\n', stderr: '', code: 3 });
        assert.deepEqual(b, { stdout: '', stderr: 'second\n', code: 4 });
      } finally {
        client.end();
      }
    });

    it('shell with a pty: TERM, size, resize, Ctrl-C and the exit status', async () => {
      const args = sshArgs(gw, { user: USER, identity: key.path, args: ['-tt'] });
      const term = await openTerminal(['sh', '-c', `TERM=screen ssh ${args.map((a) => `'${a}'`).join(' ')}; echo "SSH-EXIT=$?"`], { cols: 100, rows: 30 });
      try {
        // Quotes split the markers so the echoed command line never matches, only the output.
        await term.type('echo "TE""RM=$TERM SIZE=$(stty size)"\r');
        await term.waitFor(/TERM=screen SIZE=30 100/);

        await term.resize(120, 40);
        // tmux → ssh (SIGWINCH) → window-change → backend; the gateway logs once it is applied.
        await gw.waitForLog((l) => l.msg === 'window resized' && l.cols === 120 && l.rows === 40);
        await term.type('echo "RE""SIZED=$(stty size)"\r');
        await term.waitFor(/RESIZED=40 120/);

        // The shell reads no input while running a command line, so text typed after the marker
        // goes to cat; cat echoing it back proves cat is the foreground program before Ctrl-C.
        await term.type('echo "cat-""start"; cat\r');
        await term.waitFor(/cat-start/);
        await term.type('ping-pong\r');
        await term.waitFor(/ping-pong\s+ping-pong/);
        await term.keys('C-c');
        // Text typed before the shell is back could be flushed with the interrupted input: wait
        // for the next prompt (any text on a line after the ^C).
        await term.waitFor(/\^C[^\n]*\n[^\n]*\S/);
        await term.type('echo "after-""interrupt=$?"\r');
        await term.waitFor(/after-interrupt=130/);

        await term.type('exit 3\r');
        await term.waitFor(/SSH-EXIT=3/);
      } finally {
        await term.close();
      }
    });

    it('signals: TERM ends the program and is reported as exit-signal TERM', async () => {
      const client = await connect(gw, key.path);
      try {
        const ch = await exec(client, 'echo ready; exec sleep 1000');
        await waitForOutput(ch, /ready/);
        const exited = once(ch, 'exit');
        ch.signal('TERM');
        const [code, signal] = (await exited) as [number | null, string | undefined];
        assert.equal(code, null);
        // RFC 4254 §6.10 carries "TERM"; the ssh2 client reports it with the SIG prefix.
        assert.equal(signal, 'SIGTERM');
      } finally {
        client.end();
      }
    });

    it('signals: a trapped signal (USR1) reaches the program, which decides its exit status', async () => {
      const client = await connect(gw, key.path);
      try {
        const ch = await exec(client, 'trap "echo got-usr1; exit 4" USR1; echo ready; while :; do sleep 1; done');
        await waitForOutput(ch, /ready/);
        const output = waitForOutput(ch, /got-usr1/);
        const exited = once(ch, 'exit');
        ch.signal('USR1');
        assert.match(await output, /got-usr1/);
        const [code] = (await exited) as [number | null];
        assert.equal(code, 4);
      } finally {
        client.end();
      }
    });

    it('removal: a client that disconnects mid-program leaves nothing behind', async () => {
      const client = await connect(gw, key.path);
      const ch = await exec(client, 'echo ready; sleep 1000');
      await waitForOutput(ch, /ready/);
      assert.ok((await target.listWorkloads([gw])).length > 0, 'the program runs in a workload');
      const closed = once(client, 'close');
      client.end();
      await closed;
      // afterEach waits for the gateway to finish and asserts that no workload is left.
    });

    it('removal: a client killed with SIGKILL leaves nothing behind', async () => {
      const child = await spawnSsh(gw, { user: USER, identity: key.path, command: 'echo ready; sleep 1000' });
      child.stdin!.on('error', () => undefined);
      child.stderr!.resume();
      await new Promise<void>((resolve, reject) => {
        let text = '';
        child.stdout!.on('data', (d: Buffer) => {
          text += d.toString();
          if (text.includes('ready')) resolve();
        });
        child.once('close', () => reject(new Error('ssh ended before the program ran')));
      });
      assert.ok((await target.listWorkloads([gw])).length > 0, 'the program runs in a workload');
      const gone = once(child, 'close');
      child.kill('SIGKILL');
      await gone;
    });

    /** A gateway of its own (merged over the suite's config) with one live session in it. */
    async function liveSession(extra: GatewayConfig): Promise<{ own: TestGateway; child: ChildProcess; stderr: () => string }> {
      const own = await startGateway(deepMerge(deepMerge(authConfig(hook), target.gatewayOverrides), extra));
      const child = await spawnSsh(own, { user: USER, identity: key.path, command: 'echo ready; sleep 1000', args: ['-o', 'ServerAliveInterval=0'] });
      child.stdin!.on('error', () => undefined);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      await new Promise<void>((resolve, reject) => {
        let text = '';
        child.stdout!.on('data', (d: Buffer) => {
          text += d.toString();
          if (text.includes('ready')) resolve();
        });
        child.once('close', () => reject(new Error(`ssh ended before the program ran: ${stderr}`)));
      });
      assert.ok((await target.listWorkloads([gw, own])).length > 0, 'the program runs in a workload');
      return { own, child, stderr: () => stderr };
    }

    it('removal: an idle connection is closed with one line and leaves nothing behind', async () => {
      const { own, child, stderr } = await liveSession({ ssh: { idleTimeout: '2s' } });
      try {
        await once(child, 'close');
        assert.match(stderr(), /idle for too long.*\[IDLE_TIMEOUT\]/);
        await own.waitForIdle();
        assert.deepEqual(await target.listWorkloads([gw, own]), []);
      } finally {
        await own.stop();
      }
    });

    it('removal: a frozen client (keepalives unanswered) leaves nothing behind', async () => {
      const { own, child } = await liveSession({ ssh: { clientAliveInterval: '1s', clientAliveCountMax: 1 } });
      child.kill('SIGSTOP'); // alive but frozen: TCP stays up, nothing answers
      try {
        await own.waitForLog((l) => l.msg === 'client stopped answering keepalives');
        await own.waitForIdle();
        assert.deepEqual(await target.listWorkloads([gw, own]), []);
      } finally {
        child.kill('SIGKILL');
        await own.stop();
      }
    });

    it('removal: gateway SIGTERM tells the user, removes every workload and exits 0', async () => {
      const { own, child, stderr } = await liveSession({ ssh: { shutdownTimeout: '1s' } });
      const clientExit = once(child, 'close');
      assert.equal(await own.stop('SIGTERM'), 0);
      await clientExit;
      assert.match(stderr(), /shutting down/);
      assert.deepEqual(await target.listWorkloads([gw]), []);
    });

    it('unavailable backend: one clear line with a code, exit 255, nothing left behind', async () => {
      const broken = await startGateway(deepMerge(deepMerge(authConfig(hook), target.gatewayOverrides), target.unavailable.overrides));
      try {
        const r = await ssh(broken, { user: USER, identity: key.path, command: 'echo should-not-run' });
        assert.equal(r.code, 255, r.stderr);
        assert.equal(r.stdout.length, 0);
        const lines = r.stderr.split('\n').filter((l) => l.startsWith('airlock:'));
        assert.equal(lines.length, 1, `exactly one airlock line, got: ${r.stderr}`);
        assert.match(lines[0] ?? '', new RegExp(`\\[${target.unavailable.code}\\]`));
        assert.doesNotMatch(r.stderr, /at .*\.ts:\d+|ECONNREFUSED|ENOENT|127\.0\.0\.1:\d+|\.sock/, 'no stack traces or internal addresses');
        await broken.waitForIdle();
      } finally {
        await broken.stop();
      }
    });
  });
}

function authConfig(hook: WebhookServer): GatewayConfig {
  return { auth: { publicKey: { method: 'webhook', webhook: { url: hook.url } } } };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function connect(gw: TestGateway, keyPath: string): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  const ready = once(client, 'ready');
  client.on('error', () => undefined);
  client.connect({ host: '127.0.0.1', port: gw.port, username: USER, privateKey: await readFile(keyPath) });
  await ready;
  return client;
}

function exec(client: ssh2.Client, command: string): Promise<ssh2.ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))));
}

/** Runs a command on an open connection and collects both streams and the exit code. */
async function collect(client: ssh2.Client, command: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const ch = await exec(client, command);
  let stdout = '';
  let stderr = '';
  let code: number | null = null;
  ch.on('data', (d: Buffer) => (stdout += d.toString()));
  ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  ch.on('exit', (c: number | null) => (code = c));
  ch.end();
  await once(ch, 'close');
  return { stdout, stderr, code };
}

/** Resolves with the stdout text once it matches `pattern`. */
function waitForOutput(ch: ssh2.ClientChannel, pattern: RegExp): Promise<string> {
  let text = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      text += d.toString();
      if (pattern.test(text)) {
        ch.off('data', onData);
        ch.off('close', onClose);
        resolve(text);
      }
    };
    const onClose = () => reject(new Error(`channel closed before ${pattern}; got: ${text}`));
    ch.on('data', onData);
    ch.once('close', onClose);
  });
}
