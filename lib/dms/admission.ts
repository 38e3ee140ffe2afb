/**
 * The bound of the actions waiting in memory: accepted, queued or running, not yet answered. Beyond it the next
 * message is not taken — its PUBACK withheld — so the broker holds the backlog (MQTT's own flow control: mqtt.js
 * hands over one packet at a time and goes on to the next only once the PUBACK of this one was sent).
 *
 * Withholding stops every incoming packet, the PUBACKs of the agent's own replies among them, so nothing that
 * frees room may wait for one: room is made when an action is *answered* (its response stored), which needs
 * snapd and the disk, never the broker; once room is made the held message is taken and the packets behind it
 * flow again. At least one action is always let in, however large.
 */

/** Options of {@link Admission}. */
export interface AdmissionOptions {
  /** Actions waiting at most (`actions.max-waiting`). */
  maxActions: number;
  /** Their requests' bytes at most (`actions.max-waiting-bytes`). */
  maxBytes: number;
}

/** Thrown to the held message of a connection that a newer one replaced (the broker delivers it again). */
export class Superseded extends Error {
  override name = "Superseded";
}

/** Counts the waiting actions and holds the next message while they are over the bound. */
export class Admission {
  readonly #waiting = new Map<string, number>();
  #bytes = 0;
  #held: { resolve(): void; reject(error: Error): void } | undefined;

  constructor(private readonly options: AdmissionOptions) {}

  /** Actions waiting now. */
  get count(): number {
    return this.#waiting.size;
  }

  /** Their bytes now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** True while the next message must wait. */
  get full(): boolean {
    return this.#waiting.size > 0 &&
      (this.#waiting.size >= this.options.maxActions || this.#bytes >= this.options.maxBytes);
  }

  /**
   * Resolves once there is room. Only one message is ever held (mqtt.js hands over the next only after it): a
   * newer wait means the connection of the older one is gone, and the older is rejected with {@link Superseded}.
   */
  room(): Promise<void> {
    this.#held?.reject(new Superseded("a newer connection took over; the broker delivers it again"));
    this.#held = undefined;
    if (!this.full) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#held = { resolve, reject };
    return promise;
  }

  /** Counts action `id` (`bytes` of request) as waiting. */
  enter(id: string, bytes: number): void {
    if (this.#waiting.has(id)) return;
    this.#waiting.set(id, bytes);
    this.#bytes += bytes;
  }

  /** Action `id` was answered (or given up): its room is free; a held message is let in. */
  leave(id: string): void {
    const bytes = this.#waiting.get(id);
    if (bytes === undefined) return;
    this.#waiting.delete(id);
    this.#bytes -= bytes;
    if (this.#held && !this.full) {
      const held = this.#held;
      this.#held = undefined;
      held.resolve();
    }
  }
}

/** The bytes a request holds in memory (its strings). */
export function requestBytes(request: { id: string; action: string; snap: string; data: string }): number {
  return request.id.length + request.action.length + request.snap.length + request.data.length;
}
