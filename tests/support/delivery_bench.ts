/**
 * The delivery unit on a bench: a real agent database, fakes for the broker (publish), the action runner and
 * snapd's change list, and a fake clock — no broker, no snapd process, no sleeps. A "restart" is a second Delivery
 * on the same database after the first was abandoned mid-action, which is what the process sees after SIGKILL.
 */
import type { DatabaseSync } from "node:sqlite";
import type { ActionReply } from "../../lib/actions/dispatcher.ts";
import { Delivery, type DeliveryOptions } from "../../lib/dms/delivery.ts";
import type { ActionRequest } from "../../lib/dms_protocol/messages.ts";
import { KeyedQueue } from "../../lib/keyed_queue.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";
import { SnapdError } from "../../lib/snapd/error.ts";
import type { SnapdChange, SnapdSnap } from "../../lib/snapd/types.ts";
import { openAgentDb } from "../../lib/store/agent_db.ts";
import { FakeClock, settle } from "./fake_clock.ts";

/** Where the bench's responses go. */
export const TOPIC = "devices/pub/dev-1";

/**
 * snapd's change list, as `GET /v2/changes?select=all[&for=<snap>]` shows it, and the snaps' states as
 * `GET /v2/snaps/<name>` does (404 for a snap not installed). `prune()` forgets ready changes as snapd does: in
 * the order they became ready.
 */
export class FakeChanges {
  readonly list: (SnapdChange & { snap: string })[] = [];
  /** Snap states (`active`, `installed` = disabled) by name; absent: not installed. */
  readonly snaps = new Map<string, string>();
  /** Reads that fail before one succeeds (Infinity: all of them). */
  failures = 0;
  reads = 0;
  #next = 50;

  constructor(private readonly clock: FakeClock) {}

  /** How the next started changes begin: ready at once (Done), or running until `finish()`. */
  running = false;

  /** snapd starts a change: the next id. */
  start(snap: string, kind: string, spawnedAt = this.clock.now()): string {
    const id = String(++this.#next);
    this.list.push({
      id,
      kind,
      snap,
      summary: `${kind} ${snap}`,
      status: this.running ? "Doing" : "Done",
      ready: !this.running,
      "spawn-time": new Date(spawnedAt).toISOString(),
      ...(this.running ? {} : { "ready-time": new Date(spawnedAt).toISOString() }),
    });
    return id;
  }

  /** The change becomes ready. */
  finish(id: string, status = "Done"): void {
    const change = this.list.find((c) => c.id === id)!;
    Object.assign(change, { status, ready: true, "ready-time": new Date(this.clock.now()).toISOString() });
  }

  /** snapd forgets its ready changes, oldest-ready first, keeping the newest `keep`. */
  prune(keep = 0): void {
    const ready = this.list.filter((c) => c.ready)
      .sort((a, b) =>
        Date.parse(a["ready-time"]!) - Date.parse(b["ready-time"]!) || Number(a.id) - Number(b.id)
      );
    for (const change of ready.slice(0, Math.max(0, ready.length - keep))) {
      this.list.splice(this.list.indexOf(change), 1);
    }
  }

  snap = (name: string): Promise<SnapdSnap> => {
    const status = this.snaps.get(name);
    if (!status) return Promise.reject(new SnapdError(`snap "${name}" not found`, 404, "snap-not-found"));
    return Promise.resolve({ name, status } as SnapdSnap);
  };

  change = (id: string): Promise<SnapdChange> => {
    const change = this.list.find((c) => c.id === id);
    if (!change) return Promise.reject(new Error(`cannot find change with id "${id}"`));
    return Promise.resolve(structuredClone(change));
  };

  /** As snapd selects: `in-progress` (its default) lists the changes not ready, `all` every one. */
  changes = (options: { select?: "all" | "in-progress"; for?: string } = {}): Promise<SnapdChange[]> => {
    this.reads++;
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new Error("cannot communicate with server: connection refused"));
    }
    const select = options.select ?? "in-progress";
    return Promise.resolve(
      this.list.filter((c) => (!options.for || c.snap === options.for) && (select === "all" || !c.ready)),
    );
  };
}

const KINDS: Record<string, string> = {
  enable: "enable-snap",
  disable: "disable-snap",
  install: "install-snap",
};

/** A delivery bench. */
export interface Bench {
  clock: FakeClock;
  snapd: FakeChanges;
  db: DatabaseSync;
  /** The agent database's file (its WAL beside it). */
  dbPath: string;
  logs: MemorySink;
  published: { topic: string; payload: Record<string, unknown> }[];
  ran: string[];
  /** Requests whose run is held until released. */
  held: Map<string, () => void>;
  hold: Set<string>;
  brokerUp: boolean;
  unregistered: number;
  /** Called as an action starts running (before it may be held). */
  onRun?: (id: string) => void;
  delivery(options?: Pick<DeliveryOptions, "waiting" | "journalMaxBytes">): Delivery;
  /** `redelivered`: as the broker marks a message it sends again (DUP). */
  send(request: Partial<ActionRequest> & { id: string; action: string }, redelivered?: boolean): void;
  responses(id: string): Record<string, unknown>[];
}

/** Runs `fn` on a fresh bench. */
export async function withDelivery(fn: (bench: Bench) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "delivery-" });
  const clock = new FakeClock();
  const logs = new MemorySink();
  const log = createLogger("test", { level: "debug", sink: logs });
  const db = await openAgentDb(`${dir}/agent.db`, log);
  const snapd = new FakeChanges(clock);
  const deliveries: Delivery[] = [];
  const bench: Bench = {
    clock,
    snapd,
    db,
    dbPath: `${dir}/agent.db`,
    logs,
    published: [],
    ran: [],
    held: new Map(),
    hold: new Set(),
    brokerUp: true,
    unregistered: 0,
    delivery(options = {}) {
      const delivery = new Delivery({
        ...options,
        db,
        responseTopic: TOPIC,
        queue: new KeyedQueue(),
        publish(topic, payload) {
          if (!bench.brokerUp) return Promise.reject(new Error("not connected"));
          bench.published.push({ topic, payload: JSON.parse(payload) });
          return Promise.resolve();
        },
        async run(request): Promise<ActionReply> {
          bench.ran.push(request.id);
          bench.onRun?.(request.id);
          if (bench.hold.has(request.id)) {
            await new Promise<void>((resolve) => bench.held.set(request.id, resolve));
          }
          const base = { action: request.action, id: request.id };
          if (request.action === "unregister") {
            return { response: { ...base, success: true }, afterReply: "unregister" };
          }
          const kind = KINDS[request.action];
          if (!kind) return { response: { ...base, success: true, result: "ok" } };
          return { response: { ...base, success: true, result: snapd.start(request.snap, kind) } };
        },
        snapd,
        clock,
        log,
        backoff: { initialMs: 100, maxMs: 1000, random: () => 1 },
        patienceMs: 5000,
        changePoll: { initialMs: 100, maxMs: 400, random: () => 1 },
        onUnregister: () => Promise.resolve(void bench.unregistered++),
      });
      deliveries.push(delivery);
      return delivery;
    },
    send(request, redelivered = false) {
      deliveries.at(-1)!.accept(
        new TextEncoder().encode(JSON.stringify({ snap: "", data: "", ...request })),
        redelivered,
      );
    },
    responses(id) {
      return bench.published.filter((m) => m.payload.id === id).map((m) => m.payload);
    },
  };
  try {
    await fn(bench);
  } finally {
    for (const delivery of deliveries) delivery.stop();
    for (const release of bench.held.values()) release();
    await settle();
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}
