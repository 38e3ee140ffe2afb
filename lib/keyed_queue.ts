/**
 * Runs tasks one at a time per key, in the order they were added, while tasks of different keys run
 * concurrently: actions on one snap keep their order, a slow snap does not hold up the others.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Number of keys with queued or running tasks. */
  get activeKeys(): number {
    return this.#tails.size;
  }

  /** True when nothing is queued or running for `key`. */
  isIdle(key: string): boolean {
    return !this.#tails.has(key);
  }

  /** Queues `task` behind the earlier tasks of `key`; resolves or rejects with the task's outcome. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Resolves when every task queued so far has settled. */
  async idle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all(this.#tails.values());
  }
}
