/** A child process whose output lines are collected and can be awaited (and kept for the secrets scan). */
import { recordLine } from "./test_log.ts";

/** Options of {@link Child.spawn}. */
export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Echo output lines to stderr, prefixed (for debugging). @default env TEST_VERBOSE */
  echo?: string;
}

/** A running child process. */
export class Child {
  /** Every stdout and stderr line so far. */
  readonly lines: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  readonly #process: Deno.ChildProcess;
  readonly #waiters = new Set<() => void>();
  readonly #drained: Promise<void>;

  private constructor(process: Deno.ChildProcess, echo: string | undefined) {
    this.#process = process;
    this.#drained = Promise.all([this.#collect(process.stdout, echo), this.#collect(process.stderr, echo)])
      .then(() => {});
    this.status = process.status.then(async (status) => {
      await this.#drained;
      this.#wake();
      return status;
    });
  }

  /** Starts `command` with `args`. */
  static spawn(command: string, args: string[], options: SpawnOptions = {}): Child {
    const process = new Deno.Command(command, {
      args,
      env: options.env,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const verbose = Deno.env.get("TEST_VERBOSE") ? command.split("/").pop() : undefined;
    return new Child(process, options.echo ?? verbose);
  }

  get pid(): number {
    return this.#process.pid;
  }

  /** The number of lines so far; pass it as `after` to wait only for newer lines. */
  mark(): number {
    return this.lines.length;
  }

  /** Resolves with the first line (after index `after`) that matches; rejects after `timeoutMs`. */
  async waitForLine(pattern: RegExp, options: { after?: number; timeoutMs?: number } = {}): Promise<string> {
    const deadline = Date.now() + (options.timeoutMs ?? 15_000);
    let exited = false;
    this.status.then(() => (exited = true));
    for (;;) {
      const line = this.lines.slice(options.after ?? 0).find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (exited) throw new Error(`process exited before printing ${pattern}\n${this.tail()}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out waiting for ${pattern}\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(remaining, 200));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.add(done);
      });
    }
  }

  /** Lines that match `pattern`. */
  matching(pattern: RegExp): string[] {
    return this.lines.filter((line) => pattern.test(line));
  }

  /** The last lines of output, for error messages. */
  tail(count = 40): string {
    return this.lines.slice(-count).join("\n");
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  async stop(signal: Deno.Signal = "SIGTERM", timeoutMs = 10_000): Promise<Deno.CommandStatus> {
    try {
      this.#process.kill(signal);
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        this.#process.kill("SIGKILL");
      } catch { /* gone */ }
    }, timeoutMs);
    try {
      return await this.status;
    } finally {
      clearTimeout(timer);
    }
  }

  async #collect(stream: ReadableStream<Uint8Array>, echo: string | undefined): Promise<void> {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const line of parts) this.#push(line, echo);
    }
    if (pending) this.#push(pending, echo);
  }

  #push(line: string, echo: string | undefined): void {
    this.lines.push(line);
    recordLine(line);
    if (echo) console.error(`[${echo}] ${line}`);
    this.#wake();
  }

  #wake(): void {
    for (const waiter of this.#waiters) waiter();
    this.#waiters.clear();
  }
}
