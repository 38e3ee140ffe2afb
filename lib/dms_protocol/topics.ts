/** MQTT topics of one device (`<id>` = enrollment id, `<org>` = organisation id). */

/** The topics a device uses. */
export interface DeviceTopics {
  /** `devices/sub/<id>`: actions from the DMS (subscribed, QoS 1). */
  actions: string;
  /** `devices/pub/<id>`: action responses (QoS 1). */
  responses: string;
  /** `devices/health/<id>`: health messages. */
  health: string;
  /** `metrics/<org>`: Influx line protocol metrics (QoS 0). */
  metrics: string;
  /** `devices/actions/<sanitized serial>/#`: DMS commands such as required-install; undefined without a serial. */
  commands?: string;
}

/** The serial as the DMS puts it in topics: every character outside `[A-Za-z0-9_-]` removed. */
export function sanitizeSerial(serial: string): string {
  return serial.replace(/[^A-Za-z0-9_-]/g, "");
}

/** The topics of a device. */
export function deviceTopics(deviceId: string, organizationId: string, serial: string): DeviceTopics {
  const sanitized = sanitizeSerial(serial);
  return {
    actions: `devices/sub/${deviceId}`,
    responses: `devices/pub/${deviceId}`,
    health: `devices/health/${deviceId}`,
    metrics: `metrics/${organizationId}`,
    commands: sanitized ? `devices/actions/${sanitized}/#` : undefined,
  };
}
