/**
 * A known action id arriving again. Sent anew by the DMS (it asks again): the stored response goes out again.
 * Redelivered by the broker (DUP: the agent stopped after recording it, before acknowledging it): its response is
 * already queued or delivered, so nothing more is sent.
 */
import type { Logger } from "../log.ts";
import { isStorageFull } from "../errors.ts";
import type { JournalEntry } from "./journal.ts";
import type { Outbox } from "./outbox.ts";

/** What answering a known id needs. */
export interface RedeliveryPorts {
  outbox: Pick<Outbox, "add" | "flush">;
  /** Publishes directly, when there is no room to queue (the storage is full). */
  publish(topic: string, payload: string): Promise<void>;
  responseTopic: string;
  log: Logger;
}

/** Answers `entry`'s id arriving again (`redelivered`: the broker's DUP flag). */
export function answerKnownId(entry: JournalEntry, redelivered: boolean, ports: RedeliveryPorts): void {
  const { id } = entry.request;
  const { log, outbox, responseTopic } = ports;
  if (!entry.response) {
    log.info(`action ${id} is already in progress: ignoring the redelivery`);
  } else if (redelivered) {
    log.info(`action ${id} was redelivered by the broker after a restart; its reply is already on its way`);
  } else {
    log.info(`action ${id} was already answered: sending the stored response again`);
    try {
      outbox.add(responseTopic, entry.response);
    } catch (error) {
      if (!isStorageFull(error)) throw error;
      // the DMS asked again and gets the same answer; without room to queue it, it goes out once, directly
      void ports.publish(responseTopic, entry.response).catch(() => {});
      return;
    }
    void outbox.flush();
  }
}
