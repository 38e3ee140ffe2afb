/**
 * `.secret` (the enrollment, 0600) and `device-data.bin` (its decoded `deviceData`). `.secret` is the commit
 * point: it is written first, atomically, and `device-data.bin` is derived from it — rewritten whenever the two
 * disagree (a crash between the writes) — so they always end up describing the same enrollment.
 */
import type { AgentPaths } from "../paths.ts";
import { moveAside, readTextIfExists, removeIfExists, writeFileAtomic } from "../files.ts";
import type { Logger } from "../log.ts";
import { decodeBase64, decodeEnrollment, encodeEnrollment, type Enrollment } from "./enrollment.ts";
import { errorMessage } from "../errors.ts";

/** Reads and writes the enrollment files. */
export class CredentialsStore {
  constructor(
    private readonly paths: Pick<AgentPaths, "credentials" | "deviceData">,
    private readonly log: Logger,
  ) {}

  /** Path of `.secret`. */
  get path(): string {
    return this.paths.credentials;
  }

  /**
   * The stored enrollment, or `undefined` when there is none. A corrupt `.secret` is moved aside and reported
   * (never silently overwritten). A `.secret` written by the Go agent is read as is.
   */
  async load(): Promise<Enrollment | undefined> {
    const text = await readTextIfExists(this.paths.credentials);
    if (text === undefined) return undefined;
    let enrollment: Enrollment;
    try {
      enrollment = decodeEnrollment(JSON.parse(text));
    } catch (error) {
      const aside = await moveAside(this.paths.credentials);
      this.log.error(`${this.paths.credentials} is corrupt (${errorMessage(error)}); moved to ${aside}`);
      return undefined;
    }
    await this.#syncDeviceData(enrollment);
    return enrollment;
  }

  /**
   * Stores a new enrollment: `.secret` atomically, then `device-data.bin`. Device data that is not base64 is
   * reported and skipped: the credentials matter more, and the identity service will not enroll us twice.
   */
  async save(enrollment: Enrollment): Promise<void> {
    await writeFileAtomic(this.paths.credentials, encodeEnrollment(enrollment));
    await this.#syncDeviceData(enrollment);
  }

  /** Removes `.secret`; returns whether it existed. `device-data.bin` stays, as upstream. */
  async clear(): Promise<boolean> {
    return await removeIfExists(this.paths.credentials);
  }

  /** Rewrites `device-data.bin` when it does not match the enrollment (a crash between the two writes). */
  async #syncDeviceData(enrollment: Enrollment): Promise<void> {
    if (!enrollment.deviceData) return;
    let expected: Uint8Array;
    try {
      expected = decodeBase64(enrollment.deviceData);
    } catch {
      this.log.error(`the enrollment's deviceData is not base64; ${this.paths.deviceData} not written`);
      return;
    }
    const current = await Deno.readFile(this.paths.deviceData).catch(() => undefined);
    if (current && current.length === expected.length && current.every((byte, i) => byte === expected[i])) {
      return;
    }
    await writeFileAtomic(this.paths.deviceData, expected);
    this.log.info(`restored ${this.paths.deviceData} from the enrollment`);
  }
}
