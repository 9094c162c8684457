/**
 * Rebuilds the lines a person typed at an interactive shell from the raw stdin bytes, the way
 * readline/ash's line editor would see them: insert at the cursor, backspace/delete, Ctrl-U/K/W,
 * Home/End, left/right, up/down through this session's own history (the container is fresh,
 * so the shell's history starts empty too), bracketed paste, Ctrl-C discards the line.
 * Tab completion and reverse search happen in the shell, out of sight: such lines are flagged
 * `uncertain` rather than guessed.
 */
export interface TypedLine {
  readonly line: string;
  /** The line was edited with keys whose effect the gateway cannot know (Tab, Ctrl-R, ...). */
  readonly uncertain: boolean;
}

type EscState = { kind: 'none' } | { kind: 'esc' } | { kind: 'csi'; params: string } | { kind: 'ss3' };

const MAX_LINE = 64 * 1024;

export class LineEditor {
  #chars: string[] = [];
  #cursor = 0;
  #uncertain = false;
  #history: string[] = [];
  #historyIndex = 0;
  #draft: string[] = [];
  #esc: EscState = { kind: 'none' };
  #pasting = false;
  #lastWasCr = false;

  /** Feeds decoded input text; returns the lines completed by it. */
  feed(text: string): TypedLine[] {
    const out: TypedLine[] = [];
    for (const ch of text) this.#key(ch, out);
    return out;
  }

  /** What is typed but not yet entered (shown when a session ends mid-line). */
  get pending(): string {
    return this.#chars.join('');
  }

  #key(ch: string, out: TypedLine[]): void {
    const code = ch.codePointAt(0) ?? 0;
    const wasCr = this.#lastWasCr;
    this.#lastWasCr = false;
    if (this.#esc.kind !== 'none') {
      this.#escape(ch, code);
      return;
    }
    if (this.#pasting) {
      if (code === 0x1b) this.#esc = { kind: 'esc' };
      else if (code === 0x0d || code === 0x0a) this.#insert(' ');
      else if (code >= 0x20) this.#insert(ch);
      return;
    }
    switch (code) {
      case 0x0d: // Enter (a terminal sends CR; "\r\n" from a non-pty client counts once)
        this.#lastWasCr = true;
        this.#enter(out);
        return;
      case 0x0a:
        if (!wasCr) this.#enter(out);
        return;
      case 0x7f: // Backspace (DEL)
      case 0x08: // Ctrl-H
        if (this.#cursor > 0) {
          this.#chars.splice(this.#cursor - 1, 1);
          this.#cursor--;
        }
        return;
      case 0x15: // Ctrl-U: kill to start of line
        this.#chars.splice(0, this.#cursor);
        this.#cursor = 0;
        return;
      case 0x0b: // Ctrl-K: kill to end of line
        this.#chars.length = this.#cursor;
        return;
      case 0x17: // Ctrl-W: kill the word before the cursor
        this.#killWordBack();
        return;
      case 0x01: // Ctrl-A
        this.#cursor = 0;
        return;
      case 0x05: // Ctrl-E
        this.#cursor = this.#chars.length;
        return;
      case 0x02: // Ctrl-B
        this.#cursor = Math.max(0, this.#cursor - 1);
        return;
      case 0x06: // Ctrl-F
        this.#cursor = Math.min(this.#chars.length, this.#cursor + 1);
        return;
      case 0x03: // Ctrl-C: the shell drops the line
        this.#reset();
        return;
      case 0x04: // Ctrl-D: delete under the cursor (on an empty line it is logout, not a command)
        if (this.#cursor < this.#chars.length) this.#chars.splice(this.#cursor, 1);
        return;
      case 0x10: // Ctrl-P
        this.#historyMove(-1);
        return;
      case 0x0e: // Ctrl-N
        this.#historyMove(1);
        return;
      case 0x09: // Tab: completion happens in the shell
      case 0x12: // Ctrl-R: reverse search
      case 0x19: // Ctrl-Y: yank from the shell's kill ring
        this.#uncertain = true;
        return;
      case 0x1b:
        this.#esc = { kind: 'esc' };
        return;
      default:
        if (code >= 0x20) this.#insert(ch);
    }
  }

  #escape(ch: string, code: number): void {
    const state = this.#esc;
    if (state.kind === 'esc') {
      if (ch === '[') this.#esc = { kind: 'csi', params: '' };
      else if (ch === 'O') this.#esc = { kind: 'ss3' };
      else {
        this.#esc = { kind: 'none' };
        // Alt-b / Alt-f move by words, Alt-d / Alt-Backspace kill words.
        if (ch === 'b') this.#wordLeft();
        else if (ch === 'f') this.#wordRight();
        else if (ch === 'd') this.#killWordForward();
        else if (code === 0x7f || code === 0x08) this.#killWordBack();
        else this.#uncertain = true;
      }
      return;
    }
    if (state.kind === 'ss3') {
      this.#esc = { kind: 'none' };
      this.#cursorKey(ch, '');
      return;
    }
    if (state.kind === 'csi') {
      if (code >= 0x40 && code <= 0x7e) {
        this.#esc = { kind: 'none' };
        this.#cursorKey(ch, state.params);
      } else if (state.params.length < 16) {
        state.params += ch;
      } else {
        this.#esc = { kind: 'none' };
      }
    }
  }

  #cursorKey(final: string, params: string): void {
    if (this.#pasting) {
      if (final === '~' && params === '201') this.#pasting = false;
      return;
    }
    switch (final) {
      case 'A':
        this.#historyMove(-1);
        return;
      case 'B':
        this.#historyMove(1);
        return;
      case 'C':
        if (params.endsWith(';5') || params.endsWith(';3')) this.#wordRight();
        else this.#cursor = Math.min(this.#chars.length, this.#cursor + 1);
        return;
      case 'D':
        if (params.endsWith(';5') || params.endsWith(';3')) this.#wordLeft();
        else this.#cursor = Math.max(0, this.#cursor - 1);
        return;
      case 'H':
        this.#cursor = 0;
        return;
      case 'F':
        this.#cursor = this.#chars.length;
        return;
      case '~':
        if (params === '1' || params === '7') this.#cursor = 0;
        else if (params === '4' || params === '8') this.#cursor = this.#chars.length;
        else if (params === '3') {
          if (this.#cursor < this.#chars.length) this.#chars.splice(this.#cursor, 1);
        } else if (params === '200') this.#pasting = true;
        // Insert, PgUp/PgDn, F-keys: no effect on the line.
        return;
      default:
      // Focus events, mouse reports, function keys: ignored.
    }
  }

  #insert(ch: string): void {
    if (this.#chars.length >= MAX_LINE) {
      this.#uncertain = true;
      return;
    }
    this.#chars.splice(this.#cursor, 0, ch);
    this.#cursor++;
  }

  #isWordChar(ch: string | undefined): boolean {
    return ch !== undefined && /[\p{L}\p{N}_]/u.test(ch);
  }

  #killWordBack(): void {
    // Ctrl-W (unix-word-rubout) deletes back to the previous whitespace.
    let i = this.#cursor;
    while (i > 0 && /\s/.test(this.#chars[i - 1] as string)) i--;
    while (i > 0 && !/\s/.test(this.#chars[i - 1] as string)) i--;
    this.#chars.splice(i, this.#cursor - i);
    this.#cursor = i;
  }

  #killWordForward(): void {
    let i = this.#cursor;
    while (i < this.#chars.length && !this.#isWordChar(this.#chars[i])) i++;
    while (i < this.#chars.length && this.#isWordChar(this.#chars[i])) i++;
    this.#chars.splice(this.#cursor, i - this.#cursor);
  }

  #wordLeft(): void {
    let i = this.#cursor;
    while (i > 0 && !this.#isWordChar(this.#chars[i - 1])) i--;
    while (i > 0 && this.#isWordChar(this.#chars[i - 1])) i--;
    this.#cursor = i;
  }

  #wordRight(): void {
    let i = this.#cursor;
    while (i < this.#chars.length && !this.#isWordChar(this.#chars[i])) i++;
    while (i < this.#chars.length && this.#isWordChar(this.#chars[i])) i++;
    this.#cursor = i;
  }

  #historyMove(delta: -1 | 1): void {
    const target = this.#historyIndex + delta;
    if (target < 0 || target > this.#history.length) return;
    if (this.#historyIndex === this.#history.length) this.#draft = [...this.#chars];
    this.#historyIndex = target;
    this.#chars = target === this.#history.length ? [...this.#draft] : [...(this.#history[target] as string)];
    this.#cursor = this.#chars.length;
  }

  #enter(out: TypedLine[]): void {
    const line = this.#chars.join('');
    if (line.trim() !== '') {
      out.push({ line, uncertain: this.#uncertain });
      // Shells skip consecutive duplicates in history (HISTCONTROL=ignoredups is common; ash too).
      if (this.#history[this.#history.length - 1] !== line) this.#history.push(line);
      if (this.#history.length > 1000) this.#history.shift();
    }
    this.#reset();
  }

  #reset(): void {
    this.#chars = [];
    this.#cursor = 0;
    this.#uncertain = false;
    this.#historyIndex = this.#history.length;
    this.#draft = [];
  }
}
