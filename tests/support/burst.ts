/**
 * Bursts of actions and their judge. `burstPlan`: alternating `disable`/`enable` over many snaps (a third,
 * `disable`, on every other one), the snaps interleaved, as a DMS that changes its mind does; `mixedPlan`: every
 * kind of write action (install, remove, enable, disable, refresh, switch, setconf) among read-only ones.
 * Whatever happened to the agent meanwhile (killed, its power cut), the judge checks the promises from the DMS's
 * side and snapd's: every id answered, a repeated reply byte-identical (a read-only one may differ after a power
 * cut: answered again with the state of that moment), nothing answered that contradicts what snapd did, no effect
 * done twice, and every snap ending as the DMS last asked.
 */
import type { SnapdChange, SnapdSnap } from "../../lib/snapd/types.ts";
import { READ_ONLY_ACTIONS } from "../../lib/actions/dispatcher.ts";
import { capturedSnaps, makeSnap } from "./fake_snapd.ts";
import type { DmsClient } from "./dms_client.ts";

/** One action of a burst. */
export interface BurstAction {
  id: string;
  action: string;
  snap: string;
  data?: string;
}

/** The change each write action makes, by action. */
const CHANGE_KIND: Record<string, string> = {
  enable: "enable-snap",
  disable: "disable-snap",
  install: "install-snap",
  remove: "remove-snap",
  refresh: "refresh-snap",
  switch: "refresh-snap",
  setconf: "configure-snap",
};

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
    const actions = i % 2 === 0 ? ["disable", "enable", "disable"] : ["disable", "enable"];
    return actions.map((action, n) => ({ id: `${tag}-${snap}-${n}`, action, snap }));
  });
  const plan: BurstAction[] = [];
  for (let round = 0; round < 3; round++) {
    for (const actions of perSnap) if (actions[round]) plan.push(actions[round]);
  }
  return plan;
}

/** The snaps of {@link mixedPlan}: two burst snaps (the second from the store, so it refreshes) and none else. */
export function mixedSnaps(): { installed: SnapdSnap[]; store: SnapdSnap[] } {
  const [a, b] = burstSnaps(2);
  return {
    installed: [a, { ...b, revision: "7" }],
    store: [makeSnap("peer-new", { revision: "3" })],
  };
}

/** Every kind of write action among read-only ones, on the snaps of {@link mixedSnaps}. */
export function mixedPlan(tag: string): BurstAction[] {
  const plan: Omit<BurstAction, "id">[] = [
    { action: "disable", snap: "peer-b00" },
    { action: "install", snap: "peer-new" },
    { action: "device", snap: "" },
    { action: "setconf", snap: "peer-b01", data: '{"answer":41}' },
    { action: "enable", snap: "peer-b00" },
    { action: "info", snap: "peer-b01" },
    { action: "switch", snap: "peer-b01", data: "latest/candidate" },
    { action: "remove", snap: "peer-new" },
    { action: "setconf", snap: "peer-b01", data: '{"answer":42}' },
    { action: "conf", snap: "peer-b01", data: '["answer"]' },
    { action: "disable", snap: "peer-b00" },
    { action: "refresh", snap: "peer-b01" },
  ];
  return plan.map((a, n) => ({ id: `${tag}-${n}-${a.action}`, ...a }));
}

/** Sends the burst, one publish after another. */
export async function sendBurst(dms: DmsClient, deviceId: string, plan: BurstAction[]): Promise<void> {
  for (const request of plan) await dms.send(deviceId, JSON.stringify({ data: "", ...request }));
}

/** What snapd did, as the judge reads it. */
export interface SnapdOutcome {
  /** Its changes (`select=all`), at least those made since the burst began. */
  changes: SnapdChange[];
  /** `active`, `installed` (disabled), or undefined when not installed. */
  statusOf(snap: string): string | undefined | Promise<string | undefined>;
  /** The snap's configuration (judged only for plans with `setconf`). */
  configOf?(snap: string): Record<string, unknown>;
  /** The channel the snap tracks (judged only for plans with `switch`). */
  channelOf?(snap: string): string | undefined;
}

/** What the judge found, counted. */
export interface BurstVerdict {
  /** Ids with no reply. */
  lost: string[];
  /** Snaps with more changes than actions asked for. */
  repeatedEffects: string[];
  /** Ids answered more than once with identical bytes (allowed: MQTT QoS 1 at the edges). */
  repeatedReplies: string[];
  /**
   * What the DMS got that contradicts snapd: differing replies to a write action, a failure, a change of another
   * snap or kind or not Done, one change for two actions, a snap not ending as the last action asked.
   */
  contradictions: string[];
}

/** The ids of `plan` not answered yet. */
export function unanswered(plan: BurstAction[], dms: DmsClient, deviceId: string): BurstAction[] {
  const replies = repliesById(dms, deviceId);
  return plan.filter((a) => !replies.has(a.id));
}

/** The replies the DMS got, by id (raw payloads, in arrival order). */
function repliesById(dms: DmsClient, deviceId: string): Map<string, string[]> {
  const byId = new Map<string, string[]>();
  for (const message of dms.responses(deviceId)) {
    const id = message.json?.id;
    if (typeof id === "string") byId.set(id, [...byId.get(id) ?? [], message.payload]);
  }
  return byId;
}

/**
 * Judges the burst once every reply had its chance and snapd is idle. Every action of a plan is a valid step
 * from the state the previous ones left, so each must succeed — a write action with a change of its own kind on
 * its own snap that ended Done — and each snap must end as the last actions asked.
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
    const readOnly = READ_ONLY_ACTIONS.has(action);
    if (got.length > 1) {
      if (got.some((payload) => payload !== got[0]) && !readOnly) {
        verdict.contradictions.push(`${id}: differing replies`);
      } else verdict.repeatedReplies.push(id);
    }
    const reply = JSON.parse(got[0]);
    if (reply.success !== true) {
      verdict.contradictions.push(`${id} (${action} ${snap}): failed: ${reply.message}`);
      continue;
    }
    if (readOnly) continue;
    const change = snapd.changes.find((c) => c.id === reply.result);
    const names = snapNames(change);
    if (!change || change.kind !== CHANGE_KIND[action] || !names.includes(snap) || change.status !== "Done") {
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
  for (const snap of new Set(plan.filter((a) => CHANGE_KIND[a.action]).map((a) => a.snap))) {
    const mine = plan.filter((a) => a.snap === snap && CHANGE_KIND[a.action]);
    const made = snapd.changes.filter((c) =>
      Object.values(CHANGE_KIND).includes(c.kind) && snapNames(c).includes(snap)
    ).length;
    if (made > mine.length) {
      verdict.repeatedEffects.push(`${snap}: ${made} changes for ${mine.length} actions`);
    }
    verdict.contradictions.push(...await endState(snap, mine, snapd));
  }
  return verdict;
}

/** How `snap` ended against what the last of `actions` asked. */
async function endState(snap: string, actions: BurstAction[], snapd: SnapdOutcome): Promise<string[]> {
  const wrong: string[] = [];
  const presence = actions.filter((a) => ["enable", "disable", "install", "remove"].includes(a.action)).at(
    -1,
  );
  if (presence) {
    const expected = { enable: "active", disable: "installed", install: "active", remove: undefined }[
      presence.action as "enable"
    ];
    const status = await snapd.statusOf(snap);
    if (status !== expected) wrong.push(`${snap} ended ${status}; the DMS last asked ${presence.action}`);
  }
  const setconf = actions.filter((a) => a.action === "setconf").at(-1);
  if (setconf && snapd.configOf) {
    const config = snapd.configOf(snap);
    for (const [key, value] of Object.entries(JSON.parse(setconf.data!))) {
      if (config[key] !== value) wrong.push(`${snap}'s ${key} is ${config[key]}; the DMS last set ${value}`);
    }
  }
  const switched = actions.filter((a) => a.action === "switch").at(-1);
  if (switched && snapd.channelOf && snapd.channelOf(snap) !== switched.data) {
    wrong.push(`${snap} tracks ${snapd.channelOf(snap)}; the DMS last asked ${switched.data}`);
  }
  return wrong;
}

/** The snap a change is about, from its summary (`Disable "peer-svc" snap`): snapd 2.57 shows no snap names. */
function snapNames(change: SnapdChange | undefined): string[] {
  const quoted = /"([^"]+)"/.exec(change?.summary ?? "");
  return quoted ? [quoted[1]] : [];
}

/** The fake snapd's outcome. */
export function fakeOutcome(
  snapd: { changes: SnapdChange[]; snaps: SnapdSnap[]; config: Map<string, Record<string, unknown>> },
): SnapdOutcome {
  const active = (snap: string) => snapd.snaps.find((s) => s.name === snap && s.status !== "removed");
  return {
    changes: snapd.changes,
    statusOf: (snap) => active(snap)?.status,
    configOf: (snap) => snapd.config.get(snap) ?? {},
    channelOf: (snap) => active(snap)?.["tracking-channel"],
  };
}
