/**
 * The action's life decided without I/O (lib/dms/action_life.ts): every state the journal can hold after a restart,
 * against every answer snapd can give — no sqlite, no socket, no clock.
 */
import { firstStep, recover } from "../../../lib/dms/action_life.ts";
import type { JournalEntry } from "../../../lib/dms/journal.ts";
import { assertEquals, assertMatch } from "../../support/assert.ts";

const request = { id: "act-1", action: "disable", snap: "peer-svc", data: "" };
const entry = (state: JournalEntry["state"], baselineChange?: number): JournalEntry => ({
  request,
  state,
  receivedAt: 1000,
  startedAt: state === "started" ? 1001 : undefined,
  baselineChange,
});

Deno.test("first step: read-only runs; a change is marked first; a started one is recovered, or refused without a mark", () => {
  assertEquals(firstStep({ ...request, action: "info" }, false), { step: "run" });
  assertEquals(firstStep(request, true), { step: "mark, then run" });
  assertEquals(firstStep(request, true, entry("accepted")), { step: "mark, then run" });
  assertEquals(firstStep(request, true, entry("started", 41)), { step: "recover" });
  const unmarked = firstStep(request, true, entry("started"));
  assertEquals(unmarked.step, "answer");
  if (unmarked.step === "answer") {
    assertEquals(unmarked.response.success, false);
    assertMatch(unmarked.response.message ?? "", /without change marks.*it was not run again/);
  }
});

Deno.test("recovery: its change found is the answer; none since the mark runs it; snapd unreadable refuses", () => {
  assertEquals(recover(request, { started: true, changeId: "42" }), {
    step: "answer",
    response: { action: "disable", id: "act-1", success: true, result: "42" },
  });
  assertEquals(recover(request, { started: false }), { step: "run" });
  const unreadable = recover(request, { error: "connection refused" });
  assertEquals(unreadable?.step, "answer");
  if (unreadable?.step === "answer") {
    assertEquals(unreadable.response.success, false);
    assertMatch(unreadable.response.message ?? "", /snapd's changes cannot be read: connection refused/);
  }
});

Deno.test("recovery when snapd forgot that time: the snap's state decides; unknown or unreadable is never a second run", () => {
  const forgotten = { started: "unknown" } as const;
  assertEquals(recover(request, forgotten), undefined, "the snap's state is needed first");
  const done = recover(request, forgotten, "done");
  assertEquals(done, {
    step: "answer",
    response: {
      action: "disable",
      id: "act-1",
      success: true,
      message: "disable of peer-svc is done (snapd no longer lists its change)",
    },
  });
  for (const effect of ["unknown", { error: "EIO" }] as const) {
    const next = recover(request, forgotten, effect);
    assertEquals(next?.step, "answer", `effect ${JSON.stringify(effect)}`);
    if (next?.step === "answer") {
      assertEquals(next.response.success, false);
      assertMatch(next.response.message ?? "", /cannot tell whether disable reached snapd.*not run again/);
    }
  }
});
