/**
 * What an operator types to fix something, as this device takes it: inside a snap, `snap` commands naming the snap
 * as installed (`$SNAP_INSTANCE_NAME`); outside, the agent's own commands and settings. Every hint the agent
 * prints comes from here, so none says `<snap>`.
 */
import type { AgentPaths } from "./paths.ts";

/** The hints of one device. */
export interface OperatorHints {
  /** How to set the identity service URL. */
  setUrl: string;
  /** How to set NATS user snapd's password. */
  setNatsPassword: string;
  /** How to connect one of the snap's interfaces (inside a snap). */
  connect(plug: string): string;
}

/** The hints for the device these paths describe. */
export function operatorHints(paths: Pick<AgentPaths, "inSnap" | "snapName">): OperatorHints {
  const snap = paths.snapName ?? "iot-agent";
  return paths.inSnap
    ? {
      setUrl: `sudo snap set ${snap} url=https://identity.example.com`,
      setNatsPassword: `sudo snap set ${snap} nats.snapd.password='a long secret'`,
      connect: (plug) => `sudo snap connect ${snap}:${plug}`,
    }
    : {
      setUrl: "agent configure --url https://identity.example.com",
      setNatsPassword: "set nats.snapd.password (IOTAGENT_NATS_SNAPD_PASSWORD, or --nats.snapd.password=…)",
      connect: (plug) => `snap connect ${snap}:${plug} (inside the snap)`,
    };
}
