/** An action context on a fake snapd, for handler tests. */
import type { ActionContext } from "../../lib/actions/context.ts";
import type { DmsProtocol } from "../../lib/dms_protocol/identity.ts";
import { runAction } from "../../lib/actions/dispatcher.ts";
import type { ActionRequest, ActionResponse } from "../../lib/dms_protocol/messages.ts";
import { type Clock, systemClock } from "../../lib/clock.ts";
import { uploadStream } from "../../lib/uploads.ts";
import { createLogger, MemorySink } from "../../lib/log.ts";
import { FakeSnapd } from "./fake_snapd.ts";
import { openSnapd } from "../../lib/adapters/snapd_http.ts";

/** What a handler test gets. */
export interface ActionEnv {
  snapd: FakeSnapd;
  context: ActionContext;
  logs: MemorySink;
}

/** Runs `fn` with a fake snapd and a context bound to it; everything is closed afterwards. */
export async function withActionEnv(
  fn: (env: ActionEnv) => Promise<void>,
  options: {
    protocol?: DmsProtocol;
    snapdTimeoutMs?: number;
    conflictTimeoutMs?: number;
    allowHttp?: boolean;
    clock?: Clock;
  } = {},
): Promise<void> {
  const snapd = FakeSnapd.start();
  const client = openSnapd({
    clock: systemClock,
    socketPath: snapd.socketPath,
    timeoutMs: options.snapdTimeoutMs ?? 5000,
  });
  const logs = new MemorySink();
  const context: ActionContext = {
    snapd: client,
    device: { id: "dev-1", organizationId: "org-1" },
    protocol: options.protocol ?? "2",
    log: createLogger("test", { level: "debug", sink: logs }),
    clock: options.clock ?? systemClock,
    upload: uploadStream,
    allowHttpUploads: options.allowHttp ?? true,
    conflictTimeoutMs: options.conflictTimeoutMs ?? 3000,
  };
  try {
    await fn({ snapd, context, logs });
  } finally {
    client.close();
    await snapd.stop();
  }
}

/** Runs a request through the dispatcher and returns the response. */
export async function run(request: ActionRequest, context: ActionContext): Promise<ActionResponse> {
  return (await runAction(request, context)).response;
}
