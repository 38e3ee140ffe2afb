/**
 * The bound of the local API's requests: at most `maxInFlight` run at once (each may hold a snapd request and its
 * reply in memory); the next ones wait in arrival order, at most `maxWaiting` of them holding at most
 * `maxWaitingBytes` of payload; beyond that a request is refused at once with {@link Busy}, so a flood of local
 * requests costs a bounded amount of memory and never more than `maxInFlight` turns at snapd — which the DMS's
 * actions take first anyway (lib/limiter.ts). A refused request changed nothing: the client may simply try again.
 */

/** Options of {@link RequestGate}. */
export interface RequestGateOptions {
  /** Requests running at once (`nats.max-in-flight`). */
  maxInFlight: number;
  /** Requests waiting at most (`nats.max-waiting`); 0: none wait. */
  maxWaiting: number;
  /** Payload bytes of the waiting requests at most (`nats.max-waiting-bytes`). */
  maxWaitingBytes: number;
}

/** A request the gate has no room for; its message is the reply's error. */
export class Busy extends Error {
  override name = "Busy";
}

/** Counts the requests in flight and waiting, and refuses the ones beyond the bound. */
export class RequestGate {
  #inFlight = 0;
  #waitingBytes = 0;
  readonly #waiting: { bytes: number; go(): void }[] = [];

  constructor(private readonly options: RequestGateOptions) {
    if (!(options.maxInFlight >= 1)) throw new RangeError(`maxInFlight must be at least 1`);
  }

  /** Requests running and waiting now. */
  get load(): { inFlight: number; waiting: number; waitingBytes: number } {
    return { inFlight: this.#inFlight, waiting: this.#waiting.length, waitingBytes: this.#waitingBytes };
  }

  /**
   * Runs `task` (a request of `bytes` payload) once a turn is free.
   * @throws {Busy} at once, when it can neither run nor wait
   */
  async run<T>(task: () => Promise<T>, bytes: number): Promise<T> {
    if (this.#inFlight < this.options.maxInFlight) {
      this.#inFlight++;
    } else {
      const { maxInFlight, maxWaiting, maxWaitingBytes } = this.options;
      if (this.#waiting.length >= maxWaiting || this.#waitingBytes + bytes > maxWaitingBytes) {
        throw new Busy(
          `busy: ${maxInFlight} local API requests in flight and ${this.#waiting.length} waiting ` +
            `(nats.max-in-flight, nats.max-waiting, nats.max-waiting-bytes); try again later`,
        );
      }
      this.#waitingBytes += bytes;
      await new Promise<void>((go) => this.#waiting.push({ bytes, go }));
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) {
        this.#waitingBytes -= next.bytes;
        next.go(); // the turn passes on; the count stays
      } else {
        this.#inFlight--;
      }
    }
  }
}
