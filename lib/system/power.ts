/** Rebooting the device, as a port (tests hand in a fake). In the snap: the `shutdown` interface. */

import { runCommand } from "../adapters/command.ts";

/** Something that can reboot the device. */
export interface Power {
  reboot(reason: string): Promise<void>;
}

/** Reboots through systemd (`systemctl reboot`), which the snap's `shutdown` interface allows. */
export const systemdPower: Power = {
  async reboot(reason: string) {
    const output = await runCommand("systemctl", ["reboot", `--message=${reason}`]);
    if (!output.success) throw new Error(`systemctl reboot failed: ${output.stderr.trim()}`);
  },
};
