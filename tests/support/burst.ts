/**
 * A burst of alternating actions over many snaps, and its judge: each snap gets `disable`, `enable` (and a third,
 * `disable`, on every other snap) sent back to back, the snaps interleaved, as a DMS that changes its mind does.
 * Whatever happened to the agent meanwhile (killed, its power cut), the judge then checks the promises from the
 * DMS's side and snapd's: every id answered, a repeated reply byte-identical, nothing answered that contradicts
 * what snapd did, no effect done twice, and every snap ending as the DMS last asked.
 */
import type { SnapdChange, SnapdSnap } from "../../lib/snapd/types.ts";
import { capturedSnaps } from "./fake_snapd.ts";
import type { DmsClient } from "./dms_client.ts";

/** One action of the burst. */
export interface BurstAction {
  id: string;
  action: "disable" | "enable";
  snap: string;
}

/** `count` copies of the captured service snap (`peer-svc`), named `peer-b00`…, all enabled. */
export function burstSnaps(count: number): SnapdSnap[] {
  const template = capturedSnaps().find((snap) => snap.name === "peer-svc")!;
  return Array.from({ length: count }, (_, i) => ({
    ...structuredClone(template),
    name: `peer-b${String(i).padStart(2, "0")}`,
    id: `burst${i}`,
    status: "active",
  }));
}

/** The burst over `snaps`: round-robin, two actions per snap and a third on every other one; ids carry `tag`. */
export function burstPlan(snaps: string[], tag: string): BurstAction[] {
  const perSnap = snaps.map((snap, i) => {
    const actions: BurstAction["action"][] = i % 2 === 0
      ? ["disable", "enable", "disable"]
      : ["disable", "enable"];
    return actions.map((action, n) => ({ id: `${tag}-${snap}-${n}`, action, snap }));
  });
  const plan: BurstAction[] = [];
  for (let round = 0; round < 3; round++) {
    for (const actions of perSnap) if (actions[round]) plan.push(actions[round]);
  }
  return plan;
}

/** Sends the burst, one publish after another. */
export async function sendBurst(dms: DmsClient, deviceId: string, plan: BurstAction[]): Promise<void> {
  for (const request of plan) await dms.send(deviceId, JSON.stringify({ ...request, data: "" }));
}

/** What snapd did, as the judge reads it: its changes (`select=all`) and each snap's status. */
export interface SnapdOutcome {
  changes: SnapdChange[];
  /** `active`, `installed` (disabled), or undefined when not installed. */
  statusOf(snap: string): string | undefined | Promise<string | undefined>;
}

/** What the judge found, counted. */
export interface BurstVerdict {
  /** Ids with no reply. */
  lost: string[];
  /** Ids whose effect snapd saw more than once. */
  repeatedEffects: string[];
  /** Ids answered more than once with identical bytes (allowed: MQTT QoS 1 at the edges). */
  repeatedReplies: string[];
  /** What the DMS got that contradicts snapd: differing replies, a failure, a change of another snap or kind, a snap
   * not ending as the last action asked. */
  contradictions: string[];
}

/** The replies the DMS got for the burst, by id (raw payloads, in arrival order). */
function repliesById(dms: DmsClient, deviceId: string): Map<string, string[]> {
  const byId = new Map<string, string[]>();
  for (const message of dms.responses(deviceId)) {
    const id = message.json?.id;
    if (typeof id === "string") byId.set(id, [...byId.get(id) ?? [], message.payload]);
  }
  return byId;
}

/**
 * Judges the burst once every reply had its chance and snapd is idle. Every action of the plan is a valid step
 * from the state the previous one left (they alternate), so each must succeed, with a change of its own kind on
 * its own snap that ended Done; and each snap must end as the last action asked.
 */
export async function judgeBurst(
  plan: BurstAction[],
  { dms, deviceId, snapd }: { dms: DmsClient; deviceId: string; snapd: SnapdOutcome },
): Promise<BurstVerdict> {
  const verdict: BurstVerdict = { lost: [], repeatedEffects: [], repeatedReplies: [], contradictions: [] };
  const replies = repliesById(dms, deviceId);
  const usedChanges = new Map<string, string>();
  for (const { id, action, snap } of plan) {
    const got = replies.get(id) ?? [];
    if (got.length === 0) {
      verdict.lost.push(id);
      continue;
    }
    if (got.length > 1) {
      if (got.some((payload) => payload !== got[0])) verdict.contradictions.push(`${id}: differing replies`);
      else verdict.repeatedReplies.push(id);
    }
    const reply = JSON.parse(got[0]);
    if (reply.success !== true) {
      verdict.contradictions.push(`${id} (${action} ${snap}): failed: ${reply.message}`);
      continue;
    }
    const change = snapd.changes.find((c) => c.id === reply.result);
    const names = snapNames(change);
    if (!change || change.kind !== `${action}-snap` || !names.includes(snap) || change.status !== "Done") {
      verdict.contradictions.push(
        `${id} (${action} ${snap}): answered with change ${reply.result} (${change?.kind} of ${names} ${change?.status})`,
      );
    }
    const other = usedChanges.get(String(reply.result));
    if (other) {
      verdict.contradictions.push(`${id} and ${other} answered with the same change ${reply.result}`);
    }
    usedChanges.set(String(reply.result), id);
  }
  for (const snap of new Set(plan.map((a) => a.snap))) {
    const mine = plan.filter((a) => a.snap === snap);
    const made = snapd.changes.filter((c) =>
      /^(enable|disable)-snap$/.test(c.kind) &&
      snapNames(c).includes(snap)
    ).length;
    if (made > mine.length) {
      verdict.repeatedEffects.push(`${snap}: ${made} changes for ${mine.length} actions`);
    }
    const last = mine.at(-1)!.action;
    const status = await snapd.statusOf(snap);
    const expected = last === "enable" ? "active" : "installed";
    if (status !== expected) {
      verdict.contradictions.push(`${snap} ended ${status}; the DMS last asked ${last}`);
    }
  }
  return verdict;
}

/** The snap a change is about, from its summary (`Disable "peer-svc" snap`): snapd 2.57 shows no snap names. */
function snapNames(change: SnapdChange | undefined): string[] {
  const quoted = /"([^"]+)"/.exec(change?.summary ?? "");
  return quoted ? [quoted[1]] : [];
}

/** The fake snapd's outcome. */
export function fakeOutcome(snapd: { changes: SnapdChange[]; snaps: SnapdSnap[] }): SnapdOutcome {
  return {
    changes: snapd.changes,
    statusOf: (snap) => snapd.snaps.find((s) => s.name === snap && s.status !== "removed")?.status,
  };
}
