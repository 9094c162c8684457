/**
 * The pool launcher's request (launcher.ts): what the gateway writes to a pre-started shell.
 * Run through a real /bin/sh here with the launcher's own read-and-run loop, so quoting is
 * checked by a shell, not by a second implementation of its rules.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { LAUNCHER_SCRIPT, launchRequest } from '../../src/backend/docker/launcher.js';

const TERMINATOR = 'airlock-end-0123456789abcdef';

/** Runs the plain launcher in `sh` with `request` (+ `rest`) on stdin. */
function runLauncher(request: Buffer, rest = '', env: Record<string, string> = {}, shell: readonly string[] = ['/bin/sh']) {
  const [bin, ...flags] = shell as [string, ...string[]];
  const r = spawnSync(bin, [...flags, '-c', LAUNCHER_SCRIPT], { input: Buffer.concat([request, Buffer.from(rest)]), env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', ...env } });
  return { code: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

describe('pool launcher request', () => {
  it('runs the argv with the env exported, byte for byte, and leaves stdin to the program', () => {
    const tricky = `it's "q" \\ $(echo no) \`echo no\` $HOME\nline2\r\t end`;
    const request = launchRequest({
      argv: ['/bin/sh', '-c', 'printf "%s|" "$TRICKY" "$1"; cat; exit 6', 'arg0', "one 'two'"],
      env: [`TRICKY=${tricky}`, 'EMPTY='],
      markerNonce: 'n0nce',
      pty: undefined,
      terminator: TERMINATOR,
    });
    assert.ok(request);
    const r = runLauncher(request, 'stdin-after-the-request\n');
    assert.equal(r.code, 6, r.stderr);
    const [marker, output] = [r.stdout.slice(0, r.stdout.indexOf('\n', r.stdout.indexOf('airlock-pid'))), r.stdout.slice(r.stdout.indexOf('\n', r.stdout.indexOf('airlock-pid')) + 1)];
    assert.match(marker, /^airlock-launcher-ready\nairlock-pid n0nce \d+ 0$/);
    assert.equal(output, `${tricky}|one 'two'|stdin-after-the-request\n`);
  });

  it('later exports win over the container env; a read-only name does not stop the program', () => {
    // bash as /bin/sh (some distributions) has read-only names such as UID.
    const request = launchRequest({ argv: ['/bin/sh', '-c', 'echo "$A"'], env: ['A=1', 'UID=5', 'A=2'], markerNonce: 'n', pty: undefined, terminator: TERMINATOR });
    assert.ok(request);
    const r = runLauncher(request, '', { A: 'container' }, ['/bin/bash', '--posix']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\n2\n$/);
  });

  it('ends without running anything when stdin closes before the request is complete', () => {
    const request = launchRequest({ argv: ['/bin/sh', '-c', 'echo ran'], env: [], markerNonce: 'n', pty: undefined, terminator: TERMINATOR });
    assert.ok(request);
    const cut = request.subarray(0, request.length - 5);
    const r = runLauncher(cut);
    assert.equal(r.code, 125);
    assert.doesNotMatch(r.stdout, /ran/);
    assert.equal(runLauncher(Buffer.alloc(0)).code, 125);
  });

  it('a value cannot end the request early: only the random terminator does', () => {
    const request = launchRequest({ argv: ['/bin/sh', '-c', 'printf %s "$V"'], env: [`V=x\nairlock-end-guess\necho injected\n`], markerNonce: 'n', pty: undefined, terminator: TERMINATOR });
    assert.ok(request);
    const r = runLauncher(request);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.endsWith('x\nairlock-end-guess\necho injected\n'));
    assert.doesNotMatch(r.stdout, /^injected$/m);
  });

  it('with a pty the script restores the terminal with the size in one stty', () => {
    const request = launchRequest({ argv: ['sh'], env: ['TERM=xterm'], markerNonce: 'n', pty: { term: 'xterm', cols: 100, rows: 40 }, terminator: TERMINATOR });
    assert.ok(request);
    assert.match(request.toString(), /if stty "\$airlock_tty" rows 40 cols 100 2>\/dev\/null; then airlock_sz=1; else stty "\$airlock_tty" 2>\/dev\/null; fi/);
  });

  it('refuses what only a normal exec can carry: NUL bytes, names that are no shell identifiers', () => {
    const base = { markerNonce: 'n', pty: undefined, terminator: TERMINATOR } as const;
    assert.equal(launchRequest({ ...base, argv: ['/bin/sh', '-c', 'a\0b'], env: [] }), undefined);
    assert.equal(launchRequest({ ...base, argv: ['true'], env: ['MY-VAR=1'] }), undefined);
    assert.equal(launchRequest({ ...base, argv: ['true'], env: ['1X=1'] }), undefined);
    assert.equal(launchRequest({ ...base, argv: [], env: [] }), undefined);
    assert.equal(launchRequest({ ...base, argv: ['echo', TERMINATOR], env: [] })?.toString().includes(`'${TERMINATOR}'`), true, 'inside a quoted word it is no line of its own');
  });
});
