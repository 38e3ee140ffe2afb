/**
 * The snap's health in snapd (`snapctl set-health`), which `snap info` shows operators: `okay`, or `error` with a
 * short message when the agent has had no broker for longer than `health.unreachable-error`, or cannot write its
 * database. It is told only when it changes (a call to `snapctl` is a process), and only inside a snap.
 */
import type { Logger } from "./log.ts";
import type { SnapctlResult } from "./adapters/snapctl.ts";

/** What the agent says of itself. */
export type Health = { status: "okay" } | { status: "error"; code: string; message: string };

/** snapd refuses longer health messages. */
const MESSAGE_CHARACTERS = 70;

/** Tells snapd the snap's health when it changes. */
export class SnapHealth {
  #told: string | undefined;

  constructor(
    private readonly snapctl: (args: string[]) => Promise<SnapctlResult>,
    private readonly log: Logger,
  ) {}

  /** Reports `health` unless it is what snapd was last told. */
  async report(health: Health): Promise<void> {
    const args = health.status === "okay"
      ? ["set-health", "okay"]
      : ["set-health", `--code=${health.code}`, "error", shorten(health.message)];
    const key = args.join("\0");
    if (key === this.#told) return;
    const result = await this.snapctl(args).catch((error) => ({
      success: false,
      stdout: "",
      stderr: String(error),
    }));
    if (!result.success) {
      this.log.debug(`snapctl ${args.join(" ")} failed: ${result.stderr}`);
      return;
    }
    this.#told = key;
    if (health.status === "okay") this.log.info("snap health: okay");
    else this.log.warn(`snap health: error (${health.code}): ${health.message}`);
  }
}

function shorten(message: string): string {
  return message.length <= MESSAGE_CHARACTERS ? message : `${message.slice(0, MESSAGE_CHARACTERS - 1)}…`;
}
