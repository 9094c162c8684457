/**
 * A stack of cleanup steps registered when resources are created; run in reverse order exactly
 * once. Errors in one step do not stop the others; they are reported to `onError`.
 */
export class DisposerStack {
  readonly #steps: Array<{ name: string; fn: () => unknown }> = [];
  #disposed = false;

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Registers a step; if the stack is already disposed the step runs at once. */
  defer(name: string, fn: () => unknown): void {
    if (this.#disposed) {
      void Promise.resolve().then(fn).catch(() => undefined);
      return;
    }
    this.#steps.push({ name, fn });
  }

  async dispose(onError?: (name: string, err: unknown) => void): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    while (this.#steps.length > 0) {
      const step = this.#steps.pop();
      if (!step) break;
      try {
        await step.fn();
      } catch (err) {
        onError?.(step.name, err);
      }
    }
  }
}
