/** Typed-command reconstruction from raw terminal input. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LineEditor } from '../../src/audit/commands/line-editor.js';

function lines(...chunks: string[]): string[] {
  const e = new LineEditor();
  return chunks.flatMap((c) => e.feed(c).map((l) => (l.uncertain ? `${l.line} (uncertain)` : l.line)));
}

const UP = '\x1b[A';
const DOWN = '\x1b[B';
const LEFT = '\x1b[D';
const RIGHT = '\x1b[C';

describe('line editor', () => {
  it('plain lines, CR or LF or CRLF, blank lines skipped', () => {
    assert.deepEqual(lines('ls -la\r', 'pwd\n', 'id\r\n', '\r', '   \r'), ['ls -la', 'pwd', 'id']);
  });

  it('keys split across chunks still form one line', () => {
    assert.deepEqual(lines('ec', 'ho hi', '\r'), ['echo hi']);
    assert.deepEqual(lines('ab\x1b', '[', 'D', 'X\r'), ['aXb']);
  });

  it('backspace (DEL and ^H), Ctrl-U, Ctrl-W, Ctrl-K', () => {
    assert.deepEqual(lines('rm -rf /tmp/xx\x7f\x7fy\r'), ['rm -rf /tmp/y']);
    assert.deepEqual(lines('abc\x08d\r'), ['abd']);
    assert.deepEqual(lines('secret junk\x15ls\r'), ['ls']);
    assert.deepEqual(lines('git push origin main\x17\x17status\r'), ['git push status']);
    assert.deepEqual(lines('echo hello world', LEFT.repeat(6), '\x0b\r'), ['echo hello']);
  });

  it('left/right/home/end move the cursor; delete removes under it', () => {
    assert.deepEqual(lines('ech hi', LEFT.repeat(3), 'o', '\r'), ['echo hi']);
    assert.deepEqual(lines('world', '\x1b[H', 'hello ', '\x1b[F', '!\r'), ['hello world!']);
    assert.deepEqual(lines('xls', '\x01', '\x1b[3~', '\r'), ['ls']);
    assert.deepEqual(lines('abc', '\x1bOH', '\x1bOF', LEFT, RIGHT, 'd\r'), ['abcd']);
    assert.deepEqual(lines('one two', '\x1bb', '\x1bb', 'X', '\x1bf', 'Y\r'), ['XoneY two']);
  });

  it("up/down walk this session's history like the shell does", () => {
    assert.deepEqual(lines('make test\r', 'make build\r', UP, UP, '\r'), ['make test', 'make build', 'make test']);
    assert.deepEqual(lines('a1\r', 'b2\r', 'draft', UP, UP, DOWN, DOWN, '\r'), ['a1', 'b2', 'draft']);
    assert.deepEqual(lines('cat f\r', UP, '\x7f', 'g\r'), ['cat f', 'cat g']);
    assert.deepEqual(lines(UP, UP, 'ls\r'), ['ls']);
  });

  it('Ctrl-C drops the line; Ctrl-D on an empty line is not a command', () => {
    assert.deepEqual(lines('sleep 100\x03', 'echo ok\r', '\x04'), ['echo ok']);
  });

  it('Tab completion and reverse search are flagged, not guessed', () => {
    assert.deepEqual(lines('cd /us\t\r', 'ls\r'), ['cd /us (uncertain)', 'ls']);
    assert.deepEqual(lines('\x12make\r'), ['make (uncertain)']);
  });

  it('bracketed paste is inserted literally, newlines become spaces', () => {
    assert.deepEqual(lines('\x1b[200~echo a\recho b\x1b[201~\r'), ['echo a echo b']);
  });

  it('unicode and unknown escape sequences', () => {
    assert.deepEqual(lines('echo héllo wörld 🚀\r'), ['echo héllo wörld 🚀']);
    assert.deepEqual(lines('ls\x1b[15~\x1b[I\r'), ['ls']); // F5, focus-in: no effect
  });
});
