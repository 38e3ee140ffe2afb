/**
 * Crash points for the reliability tests: with `IOTAGENT_FAILPOINT=<name>` in its environment the process kills
 * itself (SIGKILL — no cleanup, as a power cut or the OOM killer would) the first time it passes the point of that
 * name. Without the variable a point is a single comparison. The points mark the steps of an action's delivery
 * (see lib/dms/delivery.ts and lib/dms/outbox.ts), so a test can show what survives a kill at each.
 */

let armed: string | undefined;
try {
  armed = Deno.env.get("IOTAGENT_FAILPOINT") || undefined;
} catch {
  armed = undefined; // no --allow-env: no crash points
}

/** Kills the process here when the test armed this point. */
export function failpoint(name: string): void {
  if (armed !== name) return;
  console.error(`failpoint ${name}: killing the process`);
  Deno.kill(Deno.pid, "SIGKILL");
}
