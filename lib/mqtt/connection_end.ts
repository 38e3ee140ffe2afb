/** How a connection of the session ends, as the retry loop and the publishers see it. */

/** A publish that failed because the session is not connected or the connection dropped. */
export class NotConnectedError extends Error {
  override name = "NotConnectedError";

  /**
   * @param inFlight true when the message had been sent and the connection dropped before the broker acknowledged
   *   it (a broker that refuses a packet drops the connection): the outbox counts these (lib/dms/outbox.ts)
   */
  constructor(message: string, readonly inFlight = false) {
    super(message);
  }
}

/** The session left a broker on purpose, to move back to the first. */
export class MovingBack extends Error {
  override name = "MovingBack";
}

/** A connection ended: why (when known) and whether it had been up. */
export class ConnectionEnded extends Error {
  override name = "ConnectionEnded";

  constructor(readonly reason: Error | undefined, readonly wasUp: boolean) {
    super(reason?.message ?? "connection closed", { cause: reason });
  }
}
