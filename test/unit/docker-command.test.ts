/** ProcessRequest → argv: shell/exec/subsystem, the marker wrapper, environment lists. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { envList, planCommand } from '../../src/backend/docker/command.js';
import type { ProcessRequest } from '../../src/backend/backend.js';
import { AirlockError } from '../../src/core/errors.js';

const base: ProcessRequest = { channelId: 0, kind: 'exec', command: 'echo "$HOME" && exit 3', env: {} };

describe('planCommand', () => {
  it('runs exec commands through /bin/sh -c, unwrapped when no marker is needed', () => {
    assert.deepEqual(planCommand({ request: base, shellCommand: undefined, subsystems: {}, markerNonce: undefined, gate: false }), [
      '/bin/sh',
      '-c',
      'echo "$HOME" && exit 3',
    ]);
  });

  it('passes the user command as a positional argument of the wrapper, never inside the script', () => {
    const argv = planCommand({ request: base, shellCommand: undefined, subsystems: {}, markerNonce: 'abc', gate: false });
    assert.equal(argv[0], '/bin/sh');
    assert.equal(argv[1], '-c');
    assert.ok(!argv[2]!.includes('echo "$HOME"'));
    assert.deepEqual(argv.slice(3), ['airlock', '/bin/sh', '-c', 'echo "$HOME" && exit 3']);
  });

  it('the wrapper prints the marker with its own PID and then execs the program (same PID)', () => {
    const argv = planCommand({
      request: { ...base, command: 'echo "child $$"' },
      shellCommand: undefined,
      subsystems: {},
      markerNonce: 'n0',
      gate: false,
    });
    const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    const match = /^airlock-pid n0 (\d+) 0\nchild (\d+)\n$/.exec(out);
    assert.ok(match, out);
    assert.equal(match[1], match[2]);
  });

  it('waits for the gate line before starting the program', () => {
    const argv = planCommand({ request: { ...base, command: 'cat' }, shellCommand: undefined, subsystems: {}, markerNonce: 'g', gate: true });
    const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input: '\nrest of stdin' });
    assert.match(out, /^airlock-pid g \d+ 0\nrest of stdin$/);
    assert.throws(() => execFileSync(argv[0]!, argv.slice(1), { input: '', stdio: 'pipe' }), (err: { status?: number }) => err.status === 125);
  });

  it('sets the pty size with stty only when a pty is requested', () => {
    const withPty = planCommand({ request: { ...base, pty: { term: 'xterm', cols: 100, rows: 30 } }, shellCommand: undefined, subsystems: {}, markerNonce: 'p', gate: false });
    assert.match(withPty[2]!, /stty rows 30 cols 100 2>\/dev\/null && airlock_sz=1/);
    const without = planCommand({ request: base, shellCommand: undefined, subsystems: {}, markerNonce: 'p', gate: false });
    assert.doesNotMatch(without[2]!, /stty/);
  });

  it('picks bash -l when present, else sh -l, for the default shell; a configured shell wins', () => {
    const auto = planCommand({ request: { ...base, kind: 'shell', command: '' }, shellCommand: undefined, subsystems: {}, markerNonce: undefined, gate: false });
    assert.deepEqual(auto, ['/bin/sh', '-c', 'if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l']);
    const configured = planCommand({ request: { ...base, kind: 'shell', command: '' }, shellCommand: ['/bin/zsh', '-l'], subsystems: {}, markerNonce: 'm', gate: false });
    assert.deepEqual(configured.slice(3), ['airlock', '/bin/zsh', '-l']);
  });

  it('maps subsystems to their binary and refuses unknown ones', () => {
    const sftp = planCommand({ request: { ...base, kind: 'subsystem', command: 'sftp' }, shellCommand: undefined, subsystems: { sftp: '/usr/lib/sftp-server' }, markerNonce: undefined, gate: false });
    assert.deepEqual(sftp, ['/usr/lib/sftp-server']);
    assert.throws(
      () => planCommand({ request: { ...base, kind: 'subsystem', command: 'toString' }, shellCommand: undefined, subsystems: {}, markerNonce: undefined, gate: false }),
      (err: unknown) => err instanceof AirlockError && err.code === 'POLICY_DENIED',
    );
  });
});

describe('envList', () => {
  it('merges maps with later ones winning and skips names Docker cannot express', () => {
    assert.deepEqual(envList({ A: '1', B: '1' }, undefined, { B: '2', 'X=Y': 'no', C: 'a=b' }), ['A=1', 'B=2', 'C=a=b']);
  });
});
