/**
 * A real terminal for interactive tests: tmux runs the OpenSSH client in a pane of a given size,
 * keys are typed with send-keys and the screen is read with capture-pane.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);

export interface Terminal {
  screen(): Promise<string>;
  /** Polls the screen until `pattern` appears (tmux has no change notification to await). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  type(text: string): Promise<void>;
  keys(...keys: string[]): Promise<void>;
  resize(cols: number, rows: number): Promise<void>;
  /** PID of the program running in the pane. */
  pid(): Promise<number>;
  /** True once the pane's program has exited. */
  dead(): Promise<boolean>;
  close(): Promise<void>;
}

export async function openTerminal(argv: readonly string[], size: { cols: number; rows: number }): Promise<Terminal> {
  const socket = `airlock-test-${randomBytes(4).toString('hex')}`;
  const tmux = (...args: string[]) => run('tmux', ['-L', socket, '-f', '/dev/null', ...args]);
  const command = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  await tmux('new-session', '-d', '-s', 'main', '-x', String(size.cols), '-y', String(size.rows), command);
  await tmux('set-option', '-t', 'main', 'remain-on-exit', 'on');
  // A detached session follows the size of the largest client; pin the window size explicitly.
  await tmux('set-option', '-t', 'main', 'window-size', 'manual');
  const screen = async () => (await tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', 'main')).stdout;
  return {
    screen,
    async waitFor(pattern, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const text = await screen();
        if (pattern.test(text)) return text;
        if (Date.now() > end) throw new Error(`terminal did not show ${pattern} within ${timeoutMs} ms; screen:\n${text}`);
        await sleep(50);
      }
    },
    async type(text) {
      await tmux('send-keys', '-t', 'main', '-l', text);
    },
    async keys(...keys) {
      await tmux('send-keys', '-t', 'main', ...keys);
    },
    async resize(cols, rows) {
      await tmux('resize-window', '-t', 'main', '-x', String(cols), '-y', String(rows));
    },
    async pid() {
      return Number((await tmux('display-message', '-p', '-t', 'main', '#{pane_pid}')).stdout.trim());
    },
    async dead() {
      return (await tmux('display-message', '-p', '-t', 'main', '#{pane_dead}')).stdout.trim() === '1';
    },
    async close() {
      await tmux('kill-server').catch(() => undefined);
    },
  };
}
