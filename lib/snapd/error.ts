/**
 * An error from snapd or from talking to it. `status` is the HTTP status (0 when snapd could not be reached or
 * did not answer in time); `kind` is snapd's error kind (`snap-not-found`, `snap-change-conflict`, …) or "".
 * The message is snapd's own text, passed through to the DMS verbatim.
 */
import { saysChangeInProgress } from "../errors.ts";

export class SnapdError extends Error {
  override name = "SnapdError";

  constructor(
    message: string,
    readonly status: number,
    readonly kind: string = "",
    readonly value: unknown = undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** True when snapd could not be reached or did not answer in time. */
  get isTransport(): boolean {
    return this.status === 0;
  }

  /**
   * True when another change on the snap is in progress: snapd's 409 `snap-change-conflict`, or the 400 without a
   * kind that `POST /v2/apps` answers for the same condition (`snap "x" has "service-control" change in progress`).
   */
  get isConflict(): boolean {
    return this.kind === "snap-change-conflict" ||
      (this.status === 400 && this.kind === "" && saysChangeInProgress(this.message));
  }
}
