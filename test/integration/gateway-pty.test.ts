/**
 * Interactive shells in a real terminal: tmux runs the OpenSSH client (`ssh -tt`), so the pty
 * request, TERM, window size, window-change on resize, Ctrl-C through the line discipline and the
 * shell's exit status are the ones a person at a terminal gets.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keyGatewaySuite } from '../helpers/fixture.js';
import { sshArgs } from '../helpers/ssh.js';
import { openTerminal } from '../helpers/tmux.js';

for (const mode of ['connection', 'session'] as const) {
  describe(`interactive shell with a pty (${mode} mode)`, () => {
    const suite = keyGatewaySuite({ docker: { execution: { mode } } });

    it('gets TERM and the terminal size, follows resizes, handles Ctrl-C and returns the exit status', async () => {
      const args = sshArgs(suite.gw, { user: 'alice', identity: suite.fx.alice.path, args: ['-tt'] });
      const term = await openTerminal(['sh', '-c', `TERM=screen ssh ${args.map((a) => `'${a}'`).join(' ')}; echo "SSH-EXIT=$?"`], { cols: 100, rows: 30 });
      try {
        await term.type('echo "TERM=$TERM SIZE=$(stty size)"\r');
        await term.waitFor(/TERM=screen SIZE=30 100/);

        await term.resize(120, 40);
        // The resize travels tmux → ssh (SIGWINCH) → window-change → engine; the gateway logs
        // when the engine has applied it, and only then is the new size visible inside.
        await suite.gw.waitForLog((l) => l.msg === 'window resized' && l.cols === 120 && l.rows === 40);
        await term.type('echo "RESIZED=$(stty size)"\r');
        await term.waitFor(/RESIZED=40 120/);

        await term.type('sleep 1000\r');
        await term.waitFor(/\$ sleep 1000\s*$/);
        await term.keys('C-c');
        await term.type('echo "after-interrupt=$?"\r');
        await term.waitFor(/after-interrupt=130/);

        await term.type('exit 3\r');
        await term.waitFor(/SSH-EXIT=3/);
      } finally {
        await term.close();
      }
      await suite.gw.waitForIdle();
    });
  });
}
