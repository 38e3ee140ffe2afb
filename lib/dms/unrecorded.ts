/**
 * An action the journal cannot record (the storage is full): a read-only one is answered anyway — it changes
 * nothing, so a second answer after a redelivery does no harm — and any other is refused, not run: nothing is done
 * that could not be recorded.
 */
import type { ActionReply } from "../actions/dispatcher.ts";
import { READ_ONLY_ACTIONS } from "../actions/dispatcher.ts";
import type { KeyedQueue } from "../keyed_queue.ts";
import type { Logger } from "../log.ts";
import type { ActionRequest, ActionResponse } from "../dms_protocol/messages.ts";
import { errorMessage } from "../errors.ts";

/** What answering without a record needs. */
export interface UnrecordedPorts {
  queue: KeyedQueue;
  run(request: ActionRequest): Promise<ActionReply>;
  /** The reply of a read-only action already started, if it was. */
  early?: Promise<ActionReply>;
  /** Publishes a response directly (there is no outbox entry to keep it). */
  publish(response: ActionResponse): Promise<void>;
  log: Logger;
}

/** Answers `request`, which could not be recorded because of `error`. */
export function answerWithoutRecord(request: ActionRequest, error: Error, ports: UnrecordedPorts): void {
  const { log } = ports;
  const publish = (response: ActionResponse) => {
    log.info(`action ${response.action} ${response.success ? "answered" : "refused"} without a record`, {
      id: response.id,
      message: response.success ? undefined : response.message,
    });
    return ports.publish(response).catch((cause) =>
      log.warn(`the reply to ${response.id} was not sent: ${errorMessage(cause)}`)
    );
  };
  if (READ_ONLY_ACTIONS.has(request.action)) {
    void ports.queue.run(
      request.snap,
      async () => publish((await (ports.early ?? ports.run(request))).response),
    );
    return;
  }
  void publish({
    action: request.action,
    id: request.id,
    success: false,
    message:
      `the device's storage is full (${error.message}): the action was not recorded, so it was not run; ` +
      `send it again once space is freed`,
  });
}
