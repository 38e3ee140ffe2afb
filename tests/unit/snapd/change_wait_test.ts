/**
 * Waiting for a snapd change: each read answers with a captured snapd response (or a transport failure), in
 * order, and the fake clock moves time — including a wall-clock jump that must neither end nor stretch the wait.
 */
import { type ChangeWaitOutcome, waitForChange } from "../../../lib/snapd/change_wait.ts";
import { SnapdError } from "../../../lib/snapd/error.ts";
import type { SnapdChange } from "../../../lib/snapd/types.ts";
import { assertEquals, assertOk } from "../../support/assert.ts";
import { FakeClock, settle } from "../../support/fake_clock.ts";
import { fixtureJson, snapdFixture } from "../../support/fixtures.ts";

/**
 * One read: a captured `GET /v2/changes/{id}` answer by fixture number (36 install Doing, 37 install Done,
 * 33 install Error, 69 the 404 for an unknown id), or snapd being unreachable.
 */
type Answer = string | "unreachable";

/** `change()` answering the scripted reads in order; the last answer repeats. */
function scriptedSnapd(answers: Answer[]) {
  let reads = 0;
  return {
    get reads() {
      return reads;
    },
    change(): Promise<SnapdChange> {
      const answer = answers[Math.min(reads++, answers.length - 1)];
      if (answer === "unreachable") {
        return Promise.reject(new SnapdError("cannot communicate with snapd: connection refused", 0));
      }
      const { status } = snapdFixture(answer);
      const { result } = fixtureJson<{ result: SnapdChange & { message?: string; kind?: string } }>(answer);
      if (status >= 400) return Promise.reject(new SnapdError(result.message ?? "", status, result.kind));
      return Promise.resolve(result);
    },
  };
}

/** Starts a wait and lets its outcome be read once it settles. */
function startWait(snapd: ReturnType<typeof scriptedSnapd>, clock: FakeClock, patienceMs?: number) {
  const readErrors: string[] = [];
  let outcome: ChangeWaitOutcome | undefined;
  waitForChange(snapd, "42", {
    clock,
    patienceMs,
    poll: { initialMs: 1000, maxMs: 1000, random: () => 1 },
    onReadError: (error) => readErrors.push(error.message),
  }).then((o) => (outcome = o));
  return { readErrors, outcome: () => outcome };
}

Deno.test("a running change is read until it is ready, and the ready change is returned", async () => {
  const clock = new FakeClock();
  const snapd = scriptedSnapd(["36", "36", "37"]);
  const wait = startWait(snapd, clock);
  await settle();
  assertEquals(wait.outcome(), undefined);
  await clock.advance(1000);
  assertEquals(wait.outcome(), undefined);
  await clock.advance(1000);
  const outcome = wait.outcome();
  assertOk(outcome?.kind === "ready");
  assertEquals(outcome.change.status, "Done");
  assertEquals(snapd.reads, 3);
});

Deno.test("a change snapd no longer knows (404) ends the wait as gone", async () => {
  const clock = new FakeClock();
  const wait = startWait(scriptedSnapd(["69"]), clock);
  await settle();
  assertEquals(wait.outcome(), { kind: "gone" });
});

Deno.test("a read that fails is reported and retried; the wait goes on", async () => {
  const clock = new FakeClock();
  const snapd = scriptedSnapd(["unreachable", "unreachable", "33"]);
  const wait = startWait(snapd, clock);
  await clock.advance(2000);
  const outcome = wait.outcome();
  assertOk(outcome?.kind === "ready");
  assertEquals(outcome.change.status, "Error");
  assertEquals(wait.readErrors, [
    "cannot communicate with snapd: connection refused",
    "cannot communicate with snapd: connection refused",
  ]);
});

for (
  const [name, jump] of [
    ["forward by two hours", 2 * 3_600_000],
    ["back by two hours", -2 * 3_600_000],
  ] as const
) {
  Deno.test(`a wall clock jump ${name} neither ends the wait nor stretches it: patience is elapsed time`, async () => {
    const clock = new FakeClock();
    const wait = startWait(scriptedSnapd(["36"]), clock, 10_000);
    await clock.advance(4000);
    clock.set(clock.now() + jump);
    await clock.advance(4000);
    assertEquals(wait.outcome(), undefined, "8 s of 10 have passed");
    await clock.advance(2000);
    assertEquals(wait.outcome(), { kind: "timed out" });
  });
}
