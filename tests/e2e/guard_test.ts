/**
 * The last-resort guard: an error nothing caught is logged with its context, once per distinct cause, handed to
 * the recovery, and does not end the process — on a private event target and in a real process.
 */
import { installLastResortGuard } from "../../lib/guard.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";
import { assertEquals, assertIncludes, assertMatch } from "../support/assert.ts";
import { PROJECT_ROOT } from "../support/agent_process.ts";
import { Child } from "../support/child.ts";

Deno.test("an unhandled rejection and an uncaught exception are logged once per cause, recovered, not fatal", () => {
  const target = new EventTarget();
  const logs = new MemorySink();
  const faults: string[] = [];
  const remove = installLastResortGuard({
    log: createLogger("agent.guard", { level: "debug", sink: logs }),
    onFault: (reason) => faults.push(reason),
    target,
  });
  const rejection = () => {
    const promise = Promise.resolve();
    return new PromiseRejectionEvent("unhandledrejection", {
      promise,
      reason: new TypeError("The property 'options.servername' must not be an IP address"),
      cancelable: true,
    });
  };
  const first = rejection();
  target.dispatchEvent(first);
  target.dispatchEvent(rejection());
  const thrown = new ErrorEvent("error", {
    error: new RangeError("boom"),
    message: "boom",
    cancelable: true,
  });
  target.dispatchEvent(thrown);
  remove();
  target.dispatchEvent(rejection());

  assertEquals([first.defaultPrevented, thrown.defaultPrevented], [true, true], "the process does not exit");
  assertEquals(faults, [
    "TypeError: The property 'options.servername' must not be an IP address",
    "TypeError: The property 'options.servername' must not be an IP address",
    "RangeError: boom",
  ]);
  const errors = logs.matching(/ERROR/);
  assertEquals(errors.length, 2, "once per distinct cause");
  assertIncludes(
    errors[0],
    "a promise rejection nothing handled: TypeError: The property 'options.servername' must not be an IP address; recovering instead of exiting",
  );
  assertMatch(errors[0], /where="?[^"]*guard_test\.ts/);
  assertIncludes(errors[1], "an exception nothing handled: RangeError: boom");
  assertEquals(logs.matching(/DEBUG .*nothing handled, again: TypeError.* times=2/).length, 1);
});

Deno.test("in a real process, rejections, thrown callbacks and unheard error events do not end it", async () => {
  const child = Child.spawn(Deno.execPath(), ["run", "--quiet", "tests/support/guarded_process.ts"], {
    cwd: PROJECT_ROOT,
    env: { NO_COLOR: "1" },
  });
  const status = await child.status;
  assertEquals(status.code, 0, child.tail());
  assertEquals(child.matching(/still alive after 4 faults/).length, 1, child.tail());
  assertEquals(child.matching(/ERROR .*nothing handled/).length, 3, child.tail());
  assertEquals(child.matching(/ERROR .*read ECONNRESET/).length, 1);
});
