/**
 * systemd's notification protocol (`sd_notify`), for daemons of type `notify` (in the snap: `daemon: notify` and the
 * `daemon-notify` plug): `READY=1` once serving, `WATCHDOG=1` to say "still alive" within `WatchdogSec`,
 * `STOPPING=1` on the way out. Messages are datagrams to the unix socket named by `$NOTIFY_SOCKET`; without it
 * (not started by systemd) nothing is sent. A socket in the abstract namespace (`@…`) is not supported by the
 * runtime: it is reported once and nothing is sent.
 */
import { join } from "node:path";
import type { Logger } from "../log.ts";
import { errorMessage } from "../errors.ts";

/** Where notifications go. */
export interface Notifier {
  /** Sends `READY=1`, `WATCHDOG=1`, `STOPPING=1`, `STATUS=…` (one or more lines). */
  notify(state: string): Promise<void>;
  /** The watchdog's deadline in ms (`$WATCHDOG_USEC`) when systemd watches this process; undefined otherwise. */
  readonly watchdogMs: number | undefined;
  close(): void;
}

/**
 * The notifier of this process, from its environment; undefined when `$NOTIFY_SOCKET` is unset (or unusable).
 * `runtimeDir` holds the process's own end of the conversation (a datagram socket needs an address to send from).
 */
export function systemdNotifier(
  env: Record<string, string | undefined>,
  runtimeDir: string,
  log: Logger,
): Notifier | undefined {
  const target = env.NOTIFY_SOCKET;
  if (!target) return undefined;
  if (target.startsWith("@")) {
    log.warn(
      `NOTIFY_SOCKET ${target} is in the abstract namespace, which this runtime cannot reach: not notifying`,
    );
    return undefined;
  }
  const usec = Number(env.WATCHDOG_USEC);
  const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === Deno.pid;
  const watchdogMs = Number.isFinite(usec) && usec > 0 && forUs ? usec / 1000 : undefined;
  Deno.mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  const own = join(runtimeDir, `notify-${Deno.pid}.sock`);
  try {
    Deno.removeSync(own);
  } catch { /* not there */ }
  let socket: Deno.DatagramConn;
  try {
    socket = Deno.listenDatagram({ transport: "unixpacket", path: own });
  } catch (error) {
    log.warn(`cannot open a socket to notify systemd: ${errorMessage(error)}`);
    return undefined;
  }
  const encoder = new TextEncoder();
  return {
    watchdogMs,
    async notify(state) {
      try {
        await socket.send(encoder.encode(state), { transport: "unixpacket", path: target });
      } catch (error) {
        log.debug(`notifying systemd (${state}) failed: ${errorMessage(error)}`);
      }
    },
    close() {
      try {
        socket.close();
        Deno.removeSync(own);
      } catch { /* closed */ }
    },
  };
}
