/** The doctor's look at the replies the running agent set aside (the broker kept refusing them). */
import { type CheckResult, warn } from "./check_result.ts";
import { type AgentPaths, agentStatusPath } from "../paths.ts";

/**
 * A warning when the agent's status file counts replies set aside (lib/dms/outbox.ts): the DMS never got them.
 * Nothing when there are none, or no running agent said so.
 */
export async function checkSetAsideReplies(paths: AgentPaths): Promise<CheckResult | undefined> {
  let count: unknown;
  try {
    count = JSON.parse(await Deno.readTextFile(agentStatusPath(paths))).setAsideReplies;
  } catch {
    return undefined;
  }
  if (typeof count !== "number" || count <= 0) return undefined;
  return warn(
    "replies",
    `${count} reply(ies) set aside: the broker dropped the connection each time they were sent (kept in agent.db)`,
    "the broker refuses packets this large: lower mqtt.max-reply-bytes below its limit (mosquitto: max_packet_size)",
  );
}
