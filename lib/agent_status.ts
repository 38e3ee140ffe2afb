/** What the agent daemon says of itself: `v1.iot.agent.status` answers it, its status file holds it. */
import type { ProcessMemory } from "./system/memory.ts";

/**
 * The agent's life, one state at a time: `starting` → `waiting for a URL` (no identity service configured) →
 * `enrolling` (retried until the identity service accepts the device) → `serving` (enrolled: the DMS link is kept
 * up) → `leaving` (unregistered: the link is closed and the old enrollment's work forgotten) → `waiting for a URL`
 * again.
 */
export type AgentPhase = "starting" | "waiting for a URL" | "enrolling" | "serving" | "leaving";

export interface AgentStatus {
  /** Agent version. */
  version: string;
  /** Where the agent is in its life (see AgentPhase). */
  phase: AgentPhase;
  enrolled: boolean;
  deviceId?: string;
  organizationId?: string;
  /** Why the last enrollment attempt failed, while not enrolled. */
  enrollmentError?: string;
  broker?: {
    host: string;
    port: number;
    connected: boolean;
    /** RFC 3339, while connected. */
    connectedSince?: string;
    /** Why the last connection attempt failed. */
    lastError?: string;
  };
  /** RFC 3339 time of the last acknowledged health message. */
  lastHealthAt?: string;
  /** Responses waiting for the broker. */
  outboxDepth: number;
  /** Responses set aside because the broker kept refusing them (kept in agent.db, no longer sent). */
  setAsideReplies?: number;
  /** snapd changes that ended in Error after their action was answered (since the agent started), and the last. */
  failedChanges?: {
    count: number;
    last: { changeId: string; actionId: string; snap: string; error: string };
  };
  /** The local API's own connection. */
  nats?: {
    enabled: boolean;
    connected: boolean;
    lastError?: string;
    /** Why every write subject is refused: the password is the published default. */
    writesRefused?: string;
  };
  /** The agent process's memory, in bytes. */
  memory?: ProcessMemory;
}
