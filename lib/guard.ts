/**
 * The last resort: an error nothing caught — a promise rejection no one handled, an exception thrown in a
 * callback, an `error` event no listener took — would end the daemon. The guard stops that: it logs what
 * happened with its context (which kind, the error, where it was thrown), once per distinct cause, and hands the
 * cause to `onFault` (the agent restarts its broker link) instead of letting the process exit.
 */
import type { Logger } from "./log.ts";
import { errorMessage } from "./errors.ts";

/** Options of {@link installLastResortGuard}. */
export interface GuardOptions {
  log: Logger;
  /** What to do after a fault: e.g. restart the link. */
  onFault(reason: string): void;
  /** Where the events are dispatched. @default globalThis */
  target?: EventTarget;
}

/** Installs the guard; returns a function that removes it. */
export function installLastResortGuard(options: GuardOptions): () => void {
  const target = options.target ?? globalThis;
  const seen = new Map<string, number>();
  const handle = (kind: string, error: unknown) => {
    const { summary, where } = describe(error);
    const count = (seen.get(summary) ?? 0) + 1;
    seen.set(summary, count);
    if (count === 1) {
      options.log.error(`${kind} nothing handled: ${summary}; recovering instead of exiting`, { where });
    } else {
      options.log.debug(`${kind} nothing handled, again: ${summary}`, { times: count });
    }
    if (error instanceof Error && error.stack) options.log.debug(`stack of ${summary}: ${error.stack}`);
    try {
      options.onFault(summary);
    } catch (fault) {
      options.log.error(`recovering from ${summary} failed: ${errorMessage(fault)}`);
    }
  };
  const onRejection: EventListener = (event) => {
    event.preventDefault();
    handle("a promise rejection", (event as unknown as PromiseRejectionEvent).reason);
  };
  const onError: EventListener = (event) => {
    event.preventDefault();
    const { error, message } = event as unknown as ErrorEvent;
    handle("an exception", error ?? message);
  };
  target.addEventListener("unhandledrejection", onRejection);
  target.addEventListener("error", onError);
  return () => {
    target.removeEventListener("unhandledrejection", onRejection);
    target.removeEventListener("error", onError);
  };
}

/** One line for an error, and the first stack frame outside the guard. */
function describe(error: unknown): { summary: string; where: string | undefined } {
  if (!(error instanceof Error)) return { summary: String(error), where: undefined };
  const code = (error as { code?: unknown }).code;
  const summary = `${error.name}${typeof code === "string" ? ` [${code}]` : ""}: ${error.message}`;
  const frame = error.stack?.split("\n").map((line) => line.trim()).find((line) => line.startsWith("at "));
  return { summary, where: frame?.slice(3) };
}
