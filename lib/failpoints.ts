/**
 * Fault points for the reliability tests: with `IOTAGENT_FAILPOINT=<name>` in its environment the process kills
 * itself (SIGKILL — no cleanup, as a power cut or the OOM killer would) the first time it passes the point of that
 * name; with `IOTAGENT_FAILPOINT=reject:<name>` it leaves a promise rejection nothing handles there instead (once),
 * which only the daemon's last-resort guard can catch; with `IOTAGENT_FAILPOINT=wedge:<name>` it blocks its event
 * loop there for 5 s (once), as a wedged daemon would. Without the variable a point is a single comparison. The
 * points mark the steps of an action's delivery (see lib/dms/delivery.ts and lib/dms/outbox.ts), so a test can
 * show what survives a fault at each.
 */

let armed: string | undefined;
try {
  armed = Deno.env.get("IOTAGENT_FAILPOINT") || undefined;
} catch {
  armed = undefined; // no --allow-env: no fault points
}
const mode = /^(reject|wedge):/.exec(armed ?? "")?.[1] ?? "kill";
let point = mode === "kill" ? armed : armed!.slice(mode.length + 1);

/** How long a wedge blocks the event loop, in ms. */
const WEDGE_MS = 5000;

/** Kills the process here, or leaves an unhandled rejection, when the test armed this point. */
export function failpoint(name: string): void {
  if (point !== name) return;
  if (mode === "reject") {
    point = undefined;
    void Promise.reject(new Error(`failpoint ${name}: an error nothing handles`));
    return;
  }
  if (mode === "wedge") {
    point = undefined;
    const until = performance.now() + WEDGE_MS;
    while (performance.now() < until) { /* the event loop is stuck */ }
    return;
  }
  console.error(`failpoint ${name}: killing the process`);
  Deno.kill(Deno.pid, "SIGKILL");
}
