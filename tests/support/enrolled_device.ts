/**
 * A device enrolled already: its `.secret` written as the Go agent writes it (a client certificate from the
 * world's CA) and its client id granted in the broker's ACL — for agents that cannot enroll here (the real snapd
 * has no serial assertion; the Go agent beside this one).
 */
import { join } from "node:path";
import { goSecret } from "./go_files.ts";
import type { TestBroker, World } from "./world.ts";

/** Who the device is. */
export interface EnrolledDevice {
  id: string;
  /** Its certificate's common name (the broker does not key on it). */
  commonName: string;
  serial: string;
}

/** Writes `dataDir/.secret` for `device` and grants it on the world's broker; returns the file's path. */
export async function preEnroll<B extends TestBroker>(
  world: World<B>,
  device: EnrolledDevice,
  dataDir = world.dataDir,
): Promise<string> {
  const secret = join(dataDir, ".secret");
  await Deno.writeTextFile(
    secret,
    goSecret({
      id: device.id,
      client: world.ca.issue(device.commonName),
      organization: world.ca.issue("Example Inc", { isCA: true }),
      mqttUrl: "localhost",
      mqttPort: String(world.broker.devicePort ?? world.broker.port),
      serial: device.serial,
    }),
    { mode: 0o600 },
  );
  await world.broker.grantDevice({ ...device, organizationId: "abc" });
  return secret;
}
