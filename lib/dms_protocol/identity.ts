/** Who the device is to the DMS, and which generation of the protocol they speak. */

/** The DMS protocol generation: `2` (list v2, health hashes) or `legacy` (2021 formats). */
export type DmsProtocol = "2" | "legacy";

/** The enrolled device, as the DMS knows it. */
export interface DeviceIdentity {
  /** Enrollment id. */
  id: string;
  /** Organisation id. */
  organizationId: string;
}
