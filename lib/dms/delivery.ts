/**
 * The delivery unit: exactly one response per action id, no action lost or run twice — whatever the broker and
 * the process go through. It knows nothing of MQTT: the session hands it payloads and it publishes responses
 * through a port; snapd, the action runner and the clock are ports too, so every guarantee below is unit-tested
 * with fakes and a fake clock.
 *
 * - `accept()` runs before the broker's acknowledgement and records the request in the journal (a throw here
 *   withholds the acknowledgement, so the broker delivers the message again); a redelivered id gets its stored
 *   response and is not run again; a request that cannot run is answered at once. When the storage is full, a
 *   read-only action is still answered (it needs no record), any other is refused with that reason — nothing is
 *   done that could not be recorded.
 * - Actions run one at a time per snap, in arrival order; other snaps do not wait. An action that started a
 *   snapd change is answered at snapd's 202 (with the change id, as the Go agent did), but the next action on
 *   that snap waits until the change is ready: snapd checks a request against the snap's state *before* the
 *   running change has applied (a `disable` then an `enable` at once leaves the snap disabled, the enable
 *   answered "already enabled"); after a restart, the first action on a snap waits the same way for the changes
 *   the previous process left running (snap_order.ts).
 * - An action that starts a snapd change is marked "started" before its request; after a restart what happens
 *   next is decided by action_life.ts from that mark and what snapd reports — never a second run.
 * - The response is stored with its outbox entry in one transaction and published in order; it leaves the
 *   outbox only once the broker acknowledged it. A storage failure is retried with backoff, never dropped.
 */
import type { DatabaseSync } from "node:sqlite";
import { type ActionReply, changeKindOf, READ_ONLY_ACTIONS } from "../actions/dispatcher.ts";
import type { Clock } from "../clock.ts";
import { FailureLog } from "../failure_log.ts";
import type { KeyedQueue } from "../keyed_queue.ts";
import type { Logger } from "../log.ts";
import type { BackoffOptions } from "../retry.ts";
import type { SnapdPort } from "../snapd/port.ts";
import { ActionJournal, type JournalEntry } from "./journal.ts";
import { type ChangeFailure, SnapOrder } from "./snap_order.ts";
import { type ActionRequest, type ActionResponse, decodeActionRequest } from "../dms_protocol/messages.ts";
import { Outbox } from "./outbox.ts";
import { answerWithoutRecord } from "./unrecorded.ts";
import { answerKnownId } from "./redelivery.ts";
import { queueKey } from "./queue_key.ts";
import { Admission, requestBytes } from "./admission.ts";
import { durably, lookup, type Patience } from "./patience.ts";
import { DEFAULT_MAX_REPLY_BYTES, encodeBoundedReply } from "./reply_size.ts";
import { announceResponse, logAction } from "./action_log.ts";
import { asError, errorMessage, isStorageFull } from "../errors.ts";
import { failpoint } from "../failpoints.ts";
import { type Baseline, baselineOf, effectVisible, findStartedChange } from "./recovery.ts";
import { type ChangeLookup, type EffectLookup, firstStep, FORGOTTEN, recover } from "./action_life.ts";

/** What the delivery unit works through. */
export interface DeliveryPorts {
  /** Publishes a response (QoS 1); resolves once the broker acknowledged it, rejects otherwise. */
  publish(topic: string, payload: string): Promise<void>;
  /** Runs one action; never throws. */
  run(request: ActionRequest): Promise<ActionReply>;
  /**
   * snapd's changes: for the "started" mark, recovery, and waiting for a change to be ready; a snap's state, when
   * snapd forgot the change recovery looks for.
   */
  snapd: Pick<SnapdPort, "changes" | "change" | "snap">;
  clock: Clock;
}

/** Options of {@link Delivery}. */
export interface DeliveryOptions extends DeliveryPorts {
  /** The agent database (journal and outbox). */
  db: DatabaseSync;
  /** Where responses go: `devices/pub/<id>`. */
  responseTopic: string;
  /** The per-snap queue, shared with required-install. */
  queue: KeyedQueue;
  log: Logger;
  /** Retries of storage writes and of snapd lookups. */
  backoff: BackoffOptions;
  /**
   * How long snapd is waited for, in ms: reading its changes for a mark or a recovery is retried this long, and a
   * change this long before the next action on its snap goes ahead anyway (`snapd.conflict-timeout`).
   */
  patienceMs: number;
  /** Polling of a running change: the first and the largest delay, in ms. @default {initialMs: 100, maxMs: 2000} */
  changePoll?: BackoffOptions;
  /** Called once an `unregister` reply was acknowledged: clear the enrollment. */
  onUnregister(): Promise<void>;
  /** The largest reply, as its PUBLISH packet, in bytes (`mqtt.max-reply-bytes`). @default 131072 */
  maxReplyBytes?: number;
  /** The bound of the actions waiting in memory (admission.ts). @default {maxActions: 64, maxBytes: 4194304} */
  waiting?: { maxActions: number; maxBytes: number };
  /** Bytes of requests and responses stored at most (`journal.max-bytes`, journal.ts). @default 16 MiB */
  journalMaxBytes?: number;
}

/** The delivery unit of one enrollment. */
export class Delivery {
  readonly #options: DeliveryOptions;
  readonly #journal: ActionJournal;
  readonly #outbox: Outbox;
  readonly #log: Logger;
  readonly #storage: FailureLog;
  readonly #stopping = new AbortController();
  readonly #order: SnapOrder;
  readonly #admission: Admission;
  readonly #patience: Patience;

  constructor(options: DeliveryOptions) {
    this.#options = options;
    this.#admission = new Admission(options.waiting ?? { maxActions: 64, maxBytes: 4 * 1024 * 1024 });
    this.#log = options.log;
    this.#storage = new FailureLog(options.log, "storing action state");
    const { clock, backoff, patienceMs } = options;
    this.#patience = {
      clock,
      backoff,
      patienceMs,
      signal: this.#stopping.signal,
      log: this.#log,
      storage: this.#storage,
    };
    this.#journal = new ActionJournal(options.db, {
      onPruneFailed: (error) => this.#storage.failed(`forgetting old action ids: ${error.message}`),
      changesDevice: (action) => !READ_ONLY_ACTIONS.has(action),
      maxBytes: options.journalMaxBytes,
    });
    this.#outbox = new Outbox(options.db, {
      publish: (entry) => options.publish(entry.topic, entry.payload),
      log: options.log.child("outbox"),
      clock: options.clock,
      backoff: options.backoff,
      bytes: this.#journal.bytes,
    });
    this.#order = new SnapOrder({
      journal: this.#journal,
      snapd: options.snapd,
      inProgress: () =>
        lookup(
          "reading snapd's changes in progress",
          async () => (await options.snapd.changes({ select: "in-progress" })).map((change) => change.id),
          this.#patience,
        ),
      clock: options.clock,
      patienceMs: options.patienceMs,
      poll: options.changePoll,
      signal: this.#stopping.signal,
      log: options.log,
    });
  }

  /** Changes that failed after their action was answered. */
  get changeFailure(): ChangeFailure | undefined {
    return this.#order.failed;
  }

  /** Responses waiting for the broker. */
  get outboxDepth(): number {
    return this.#outbox.depth;
  }

  /** Responses set aside because the broker kept refusing them (see outbox.ts). */
  get setAsideReplies(): number {
    return this.#outbox.setAside;
  }

  /** Why the last write of action state failed, while writes fail (a full disk). */
  get storageProblem(): string | undefined {
    return this.#storage.lastCause;
  }

  /**
   * Takes one payload from `devices/sub/<id>`; runs before the broker's acknowledgement, which waits while the
   * actions waiting in memory are over their bound (the returned promise resolves once it is taken).
   * @throws only when the journal cannot record it (the message must then not be acknowledged)
   */
  accept(payload: Uint8Array, redelivered = false): void | Promise<void> {
    if (this.#admission.full) return this.#admission.room().then(() => this.#take(payload, redelivered));
    this.#take(payload, redelivered);
  }

  #take(payload: Uint8Array, redelivered: boolean): void {
    failpoint("received");
    const decoded = decodeActionRequest(payload);
    const now = this.#options.clock.now();
    switch (decoded.kind) {
      case "unanswerable":
        this.#log.warn(`dropped an action request that cannot be answered: ${decoded.error}`, {
          bytes: payload.length,
        });
        return;
      case "invalid": {
        const request = { id: decoded.id, action: decoded.action, snap: "", data: "" };
        const response = { action: decoded.action, id: decoded.id, success: false, message: decoded.error };
        let accepted;
        try {
          accepted = this.#journal.accept(request, now, this.#answer(response));
        } catch (error) {
          if (!isStorageFull(error)) throw error;
          return void this.#options.publish(this.#options.responseTopic, this.#encode(response))
            .catch(() => {});
        }
        if (!accepted.fresh) return this.#redelivered(accepted.entry, redelivered);
        this.#log.warn(`rejected action request ${decoded.id}: ${decoded.error}`);
        this.#announce(response);
        return;
      }
      case "request": {
        const { request } = decoded;
        // a read-only action whose snap has nothing queued starts at once, so that its snapd reads overlap the
        // journal's commit: nothing can come between them (the queue is idle) and reading changes nothing (a
        // redelivery's early answer is simply dropped)
        const early = READ_ONLY_ACTIONS.has(request.action) && this.#options.queue.isIdle(request.snap) &&
            this.#order.settled(request.snap)
          ? this.#options.run(request)
          : undefined;
        let accepted;
        try {
          accepted = this.#journal.accept(request, now);
        } catch (error) {
          if (!isStorageFull(error)) throw error;
          return this.#unrecorded(request, asError(error), early);
        }
        if (!accepted.fresh) return this.#redelivered(accepted.entry, redelivered);
        failpoint("journalled");
        logAction(this.#log, request.action, `action ${request.action} requested`, {
          id: request.id,
          snap: request.snap || undefined,
        });
        this.#schedule(request, undefined, early);
      }
    }
  }

  /** Resumes what the journal holds unfinished (after a restart). */
  resume(): void {
    this.#order.resume();
    for (const entry of this.#journal.unfinished()) {
      this.#log.info(`resuming action ${entry.request.action} accepted before the restart`, {
        id: entry.request.id,
      });
      this.#schedule(entry.request, entry);
    }
  }

  /** Publishes the queued responses in order (call it after each connect). */
  flush(): Promise<void> {
    return this.#outbox.flush();
  }

  /** Resolves once every action scheduled so far has settled. */
  idle(): Promise<void> {
    return this.#options.queue.idle();
  }

  /** Stops retrying; unfinished actions stay in the journal for the next start. */
  stop(): void {
    this.#stopping.abort();
    this.#outbox.stop();
  }

  /** The journal cannot record `request` (the storage is full): see unrecorded.ts. */
  #unrecorded(request: ActionRequest, error: Error, early?: Promise<ActionReply>): void {
    this.#storage.failed(`recording actions: ${error.message}`);
    const { queue, run, publish, responseTopic } = this.#options;
    const send = (response: ActionResponse) => publish(responseTopic, this.#encode(response));
    answerWithoutRecord(request, error, { queue, run, early, log: this.#log, publish: send });
  }

  /** A known id again: see redelivery.ts. */
  #redelivered(entry: JournalEntry, redelivered: boolean): void {
    const { publish, responseTopic } = this.#options;
    answerKnownId(entry, redelivered, { outbox: this.#outbox, publish, responseTopic, log: this.#log });
  }

  /**
   * Queues a request behind the others of its snap; `resumed` is its journal entry after a restart, `early` its
   * reply when it started already.
   */
  #schedule(request: ActionRequest, resumed?: JournalEntry, early?: Promise<ActionReply>): void {
    const { queue } = this.#options;
    const earlier = this.#order.firstWait(request.snap);
    if (earlier) queue.run(request.snap, earlier).catch(() => {});
    this.#admission.enter(request.id, requestBytes(request));
    queue.run(queueKey(request), () => this.#process(request, resumed, early)).catch((error) => {
      if (this.#stopping.signal.aborted) return;
      this.#log.error(`action ${request.id} could not be completed: ${errorMessage(error)}`);
    }).finally(() => this.#admission.leave(request.id));
  }

  async #process(
    request: ActionRequest,
    resumed?: JournalEntry,
    early?: Promise<ActionReply>,
  ): Promise<void> {
    const kind = changeKindOf(request.action);
    const first = firstStep(request, kind !== undefined, resumed);
    if (first.step === "answer") return void await this.#complete(first.response);
    if (first.step === "recover" && await this.#recovered(request, kind!, resumed!)) return;
    if (first.step === "mark, then run" && !(await this.#markStarted(request))) return;
    const reply = await (early ?? this.#options.run(request));
    failpoint("answered by snapd");
    const seq = await this.#complete(reply.response);
    if (kind && reply.response.success) await this.#order.untilReady(reply.response.result, request);
    if (reply.afterReply === "unregister") {
      await this.#outbox.acknowledged(seq);
      this.#log.info("unregister: reply acknowledged, clearing the enrollment");
      await this.#options.onUnregister();
    }
  }

  /**
   * A started action after a restart: asks snapd what it did (see action_life.ts for the decision) and answers
   * it; returns false when its request never reached snapd (it must run now).
   */
  async #recovered(request: ActionRequest, kind: string, entry: JournalEntry): Promise<boolean> {
    const { id, snap, action } = request;
    const mark = {
      snap,
      kind,
      baseline: entry.baselineChange!,
      baselineReady: entry.baselineReady,
      markedAt: entry.startedAt ?? entry.receivedAt,
    };
    const change: ChangeLookup = await lookup(
      `looking up what ${id} started`,
      () => findStartedChange(this.#options.snapd, mark, this.#options.clock.now()),
      this.#patience,
    ).catch((error) => ({ error: errorMessage(error) }));
    let next = recover(request, change);
    if (!next) {
      const effect: EffectLookup = await lookup(
        `reading the state of ${snap}`,
        () => effectVisible(this.#options.snapd, action, snap),
        this.#patience,
      ).catch((error) => ({ error: errorMessage(error) }));
      next = recover(request, change, effect)!;
    }
    if (next.step === "run") {
      this.#log.info(`action ${id} had not reached snapd before the restart: running it now`);
      return false;
    }
    if ("started" in change && change.started === true) {
      this.#log.info(
        `action ${id} had started change ${change.changeId} before the restart: answering with it`,
      );
    } else if (next.response.success) {
      this.#log.info(`action ${id}: ${FORGOTTEN}; the snap's state shows it done: answering so`);
    }
    await this.#complete(next.response);
    if ("started" in change && change.started === true) {
      await this.#order.untilReady(change.changeId, request);
    }
    return true;
  }

  /** Records the "started" mark with snapd's newest change for the snap; false when it was answered instead. */
  async #markStarted(request: ActionRequest): Promise<boolean> {
    let baseline: Baseline;
    try {
      baseline = await lookup(
        `reading the changes of ${request.snap}`,
        () => baselineOf(this.#options.snapd, request.snap),
        this.#patience,
      );
    } catch (error) {
      await this.#complete({
        action: request.action,
        id: request.id,
        success: false,
        message: errorMessage(error),
      });
      return false;
    }
    const { clock } = this.#options;
    await durably(() => this.#journal.markStarted(request.id, clock.now(), baseline), this.#patience);
    return true;
  }

  /** Stores the response with its outbox entry and publishes; returns the outbox sequence number. */
  async #complete(response: ActionResponse): Promise<number> {
    const seq = await durably(
      () => this.#journal.complete(response.id, this.#answer(response)),
      this.#patience,
    );
    // answered: its room is free now, not when its change is ready or its reply acknowledged (which, while a
    // message is held, would need a packet that cannot arrive)
    this.#admission.leave(response.id);
    failpoint("stored");
    this.#announce(response);
    return seq;
  }

  #announce(response: ActionResponse): void {
    announceResponse(this.#log, response);
    void this.flush();
  }

  #answer(response: ActionResponse) {
    return { topic: this.#options.responseTopic, payload: this.#encode(response) };
  }

  /** A reply the broker can take: one over `maxReplyBytes` is replaced by a refusal naming its size. */
  #encode(response: ActionResponse): string {
    const { responseTopic, maxReplyBytes = DEFAULT_MAX_REPLY_BYTES } = this.#options;
    return encodeBoundedReply(response, responseTopic, maxReplyBytes);
  }
}
