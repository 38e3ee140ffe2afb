/**
 * While user `snapd`'s NATS password is the published default, the local API is read-only: the password is in the
 * README and in the companion NATS snap's, so any process on the device that can reach the NATS server could
 * otherwise start, stop or switch snaps through the agent. Reads stay open (other snaps' status screens keep
 * working); every write subject answers an error that says why and how to set a private password.
 */
import type { OperatorHints } from "../operator_hints.ts";
import { DEFAULT_NATS_PASSWORD } from "../settings.ts";

/** Why writes are refused, for the log, `status` and `doctor`. */
export const DEFAULT_PASSWORD_RISK =
  "nats.snapd.password is the published default, so any local client could change this device";

/** What the operator types to open the writes. */
export function privatePasswordHint(hints: Pick<OperatorHints, "setNatsPassword">): string {
  return `set a private password: ${hints.setNatsPassword} (and the same on the NATS server)`;
}

/** The error every write subject answers while `password` is the default; `undefined` for a private one. */
export function writeRefusal(
  password: string,
  hints: Pick<OperatorHints, "setNatsPassword">,
): string | undefined {
  if (password !== DEFAULT_NATS_PASSWORD) return undefined;
  return `write refused: ${DEFAULT_PASSWORD_RISK}; ${privatePasswordHint(hints)}`;
}
