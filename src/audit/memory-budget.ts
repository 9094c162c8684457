/**
 * The bound on recorded bytes held in memory (queued, being compressed, or waiting for the disk),
 * shared by every recording of a gateway (`audit.queueSize`). The tap asks with `tryTake` and
 * drops what does not fit (counted); stages downstream of an accepted chunk `force` their share so
 * the total stays honest without ever blocking the session.
 */
export class MemoryBudget {
  #used = 0;
  constructor(readonly limit: number) {}

  get used(): number {
    return this.#used;
  }

  tryTake(bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  force(bytes: number): void {
    this.#used += bytes;
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}
