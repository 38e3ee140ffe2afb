/**
 * The mutation gate's list (`deno task mutants`, tests/tools/mutants.ts): each entry breaks one promise the README or
 * docs/protocol.md makes, with a small change to the code, and names the tests that must then fail. A mutation
 * that no test catches (or that only makes them hang) is a guarantee nothing proves. Every new promise comes with
 * its mutation here.
 */

/** One change to one file: `find` must occur exactly once. */
export interface Edit {
  file: string;
  find: string;
  replace: string;
}

/** A named mutation. */
export interface Mutation {
  name: string;
  /** The promise it breaks, and where it is written. */
  promise: string;
  edits: Edit[];
  /** Test files, and a `--filter` to run only the tests that should catch it. */
  tests: string[];
  filter?: string;
}

const edit = (file: string, find: string, replace: string): Edit => ({ file, find, replace });

export const MUTATIONS: Mutation[] = [
  // delivery: every state transition (README "How the link survives"; docs/protocol.md §3)
  {
    name: "dup-dropped",
    promise: "a broker redelivery (DUP) is told apart from the DMS asking again (protocol §3)",
    edits: [edit("lib/mqtt/session.ts", "packet.dup === true", "false")],
    tests: ["tests/e2e/mqtt_session_test.ts"],
    filter: "marked DUP",
  },
  {
    name: "journal-no-started-mark",
    promise: "an action is marked started before its snapd request (README: no double effect)",
    edits: [
      edit("lib/dms/journal.ts", "SET state = 'started', started_at", "SET state = 'accepted', started_at"),
    ],
    tests: ["tests/unit/dms/delivery_test.ts"],
    filter: "killed after the request reached snapd",
  },
  {
    name: "restart-forgets-snap-order",
    promise:
      "after a restart the first action on a snap waits for the changes earlier actions left running (README: per-snap order)",
    edits: [
      edit(
        "lib/dms/snap_order.ts",
        "if (!this.#earlier || this.#scheduled.has(snap)) return undefined;",
        "return undefined;",
      ),
    ],
    tests: ["tests/unit/dms/snap_order_test.ts"],
    filter: "waits for the change",
  },
  {
    name: "early-read-skips-order",
    promise:
      "after a restart a read-only action on a snap waits for the changes earlier actions left running, as others do (README: per-snap order)",
    edits: [edit("lib/dms/delivery.ts", " &&\n            this.#order.settled(request.snap)", "")],
    tests: ["tests/unit/dms/snap_order_test.ts"],
    filter: "does not start early",
  },
  {
    name: "write-answer-unsynced",
    promise:
      "the answer of an action that may change the device is synced, success or not: a power cut never lets it run again (README: durable across a power cut)",
    edits: [
      edit(
        "lib/dms/journal.ts",
        'const synced = typeof row?.action !== "string" || this.#changesDevice(row.action);',
        "const synced = false;",
      ),
    ],
    tests: ["tests/e2e/flash_wear_test.ts"],
    filter: "/keeps its answer|fsyncs through/",
  },
  {
    name: "recovered-change-not-awaited",
    promise:
      "a started action recovered with its change holds its snap until that change is ready (README: per-snap order)",
    edits: [
      edit(
        "lib/dms/delivery.ts",
        "      await this.#order.untilReady(change.changeId, request);\n",
        "",
      ),
    ],
    tests: ["tests/unit/dms/snap_order_test.ts"],
    filter: "holds its snap until",
  },
  {
    name: "journal-commit-trusted",
    promise:
      "a commit that fails after its data landed counts as recorded (README: a full disk loses nothing)",
    edits: [edit("lib/dms/journal.ts", "if (!this.#recorded(request.id)) throw error;", "throw error;")],
    tests: ["tests/unit/dms/outbox_test.ts"],
    filter: "commit that fails",
  },
  {
    name: "busy-400-not-a-conflict",
    promise:
      "a service action on a busy snap is retried until snapd.conflict-timeout, as snapd's 409 is (README: snapd conflicts)",
    edits: [
      edit(
        "lib/errors.ts",
        'return /^snap "[^"]+" has "[^"]+" change in progress$/.test(message);',
        "return false;",
      ),
    ],
    tests: ["tests/unit/actions/handlers_test.ts"],
    filter: "busy snap",
  },
  {
    name: "storage-full-unrecognised",
    promise: "a full disk is told apart from other storage failures (README: a full disk loses nothing)",
    edits: [
      edit("lib/errors.ts", "/database or disk is full|no space left on device|ENOSPC|SQLITE_FULL/i", "/^$/"),
    ],
    tests: ["tests/unit/dms/delivery_test.ts"],
    filter: "storage full",
  },
  {
    name: "prune-failure-fatal",
    promise: "a failed prune never changes the answer (README: a full disk loses nothing)",
    edits: [edit("lib/dms/journal.ts", "      this.#onPruneFailed(asError(error));", "      throw error;")],
    tests: ["tests/unit/dms/delivery_storage_test.ts"],
    filter: "prune",
  },
  {
    name: "outbox-newest-first",
    promise: "responses are published in order (protocol §3)",
    edits: [
      edit(
        "lib/dms/outbox.ts",
        "FROM outbox WHERE set_aside_at IS NULL ORDER BY seq LIMIT 1",
        "FROM outbox WHERE set_aside_at IS NULL ORDER BY seq DESC LIMIT 1",
      ),
    ],
    tests: ["tests/unit/dms/outbox_test.ts", "tests/unit/dms/delivery_test.ts"],
    filter: "order",
  },
  {
    name: "outbox-republishes-acknowledged",
    promise: "an acknowledged reply whose removal failed is not published again (README: a full disk)",
    edits: [edit("lib/dms/outbox.ts", "if (!this.#acknowledged.has(entry.seq)) {", "if (true) {")],
    tests: ["tests/unit/dms/delivery_storage_test.ts"],
    filter: "outbox removal",
  },
  {
    name: "outbox-stalls",
    promise: "the outbox resumes by itself once storage works again (README: a full disk)",
    edits: [
      edit(
        "lib/dms/outbox.ts",
        "      onRetry: (error, delay) => this.#storage.failed(errorMessage(error), delay),",
        "      shouldRetry: () => false,",
      ),
    ],
    tests: ["tests/unit/dms/delivery_storage_test.ts"],
    filter: "outbox removal",
  },
  {
    name: "recovery-takes-previous-change",
    promise: "recovery takes only a change after the baseline, never the previous action's (README: exactly)",
    edits: [
      edit(
        "lib/dms/recovery.ts",
        "changeNumber(change.id) > mark.baseline",
        "changeNumber(change.id) >= mark.baseline",
      ),
    ],
    tests: ["tests/unit/dms/delivery_test.ts"],
    filter: "previous action's change",
  },
  {
    name: "recovery-trusts-snapd-memory",
    promise: "a change snapd may have forgotten is never taken for 'not started' (README: exactly)",
    edits: [
      edit(
        "lib/dms/recovery.ts",
        'return await remembersSinceMark(snapd, mark, changes, now) ? { started: false } : { started: "unknown" };',
        "return { started: false };",
      ),
    ],
    tests: ["tests/unit/dms/delivery_test.ts"],
    filter: "pruned",
  },
  {
    name: "read-only-not-overlapped",
    promise: "a read-only action on an idle snap starts before the journal's commit (docs/performance.md)",
    edits: [
      edit(
        "lib/dms/delivery.ts",
        "&& this.#options.queue.isIdle(request.snap) &&",
        "&& false &&",
      ),
    ],
    tests: ["tests/unit/dms/delivery_test.ts"],
    filter: "before the journal's commit",
  },
  {
    name: "durable-commits-off",
    promise:
      "what guards a write action is synced: a power cut loses no action the broker handed over (README: durable across a power cut)",
    edits: [edit("lib/store/agent_db.ts", 'synchronous: "FULL"', 'synchronous: "NORMAL"')],
    tests: ["tests/e2e/flash_wear_test.ts"],
    filter: "survives a power cut after its mark",
  },
  {
    name: "write-acceptance-unsynced",
    promise:
      "a write action's acceptance is synced before the PUBACK: a cut before its mark loses nothing (README: durable across a power cut)",
    edits: [
      edit(
        "lib/dms/delivery.ts",
        "changesDevice: (action) => !READ_ONLY_ACTIONS.has(action),",
        "changesDevice: () => false,",
      ),
    ],
    tests: ["tests/e2e/flash_wear_test.ts"],
    filter: "survives a power cut before its mark",
  },
  {
    name: "read-only-synced",
    promise: "a read-only action costs no fsync (README: no flash written for nothing)",
    edits: [
      edit(
        "lib/dms/delivery.ts",
        "changesDevice: (action) => !READ_ONLY_ACTIONS.has(action),",
        "changesDevice: () => true,",
      ),
    ],
    tests: ["tests/e2e/flash_wear_test.ts"],
    filter: "fsyncs through the filesystem",
  },
  {
    name: "created-folder-not-synced",
    promise: "a folder the agent creates is synced into its parent (README: durable across a power cut)",
    edits: [edit("lib/files.ts", "    await syncDirectory(dirname(dir));\n", "")],
    tests: ["tests/e2e/powercut_files_test.ts"],
    filter: "survives a power cut",
  },
  {
    name: "start-does-not-sync-data-folder",
    promise: "each start syncs the data folders into their parents (README: durable across a power cut)",
    edits: [edit("lib/files.ts", "  await syncDirectory(dirname(path)).catch(() => {});", "")],
    tests: ["tests/e2e/powercut_files_test.ts"],
    filter: "synced at the next start",
  },
  {
    name: "removal-not-synced",
    promise: "a removed file stays removed across a power cut: unregister cannot come back enrolled",
    edits: [edit("lib/files.ts", "  await syncDirectory(dirname(path));\n  return true;", "  return true;")],
    tests: ["tests/e2e/powercut_files_test.ts"],
    filter: "stays removed",
  },
  // the link never dies (README "The link never dies")
  {
    name: "guard-not-installed",
    promise: "the daemon installs the last-resort guard (README: the link never dies)",
    edits: [
      edit(
        "main.ts",
        "const removeGuard = installLastResortGuard({",
        "const removeGuard = ((_: unknown) => () => {})({",
      ),
    ],
    tests: ["tests/e2e/link_resilience_e2e_test.ts"],
    filter: "as shipped",
  },
  {
    name: "suback-refusal-ignored",
    promise: "a refused subscription (SUBACK 0x80) is not 'connected' (README: the link never dies)",
    edits: [edit("lib/mqtt/subscriptions.ts", "(codes[i] & 0x80) !== 0", "false")],
    tests: ["tests/e2e/mqtt_session_test.ts"],
    filter: "refuses (ACL",
  },
  {
    name: "monotonic-is-wall-clock",
    promise: "how long is measured on the monotonic clock (README: watchdog, retries)",
    edits: [edit("lib/clock.ts", "monotonic: () => performance.now(),", "monotonic: () => Date.now(),")],
    tests: ["tests/unit/timer_test.ts"],
  },
  {
    name: "retry-budget-wall-clock",
    promise: "retry budgets run on the monotonic clock (README: every retry)",
    edits: [
      edit("lib/retry.ts", "const started = clock.monotonic();", "const started = clock.now();"),
      edit(
        "lib/retry.ts",
        "if (clock.monotonic() - started + delay > budget)",
        "if (clock.now() - started + delay > budget)",
      ),
    ],
    tests: ["tests/unit/retry_test.ts"],
  },
  {
    name: "timers-not-chained",
    promise: "timers longer than 2^31-1 ms wait (README: configuration rules)",
    edits: [edit("lib/timer.ts", "  arm();\n", "  timer = setTimeout(callback, ms);\n")],
    tests: ["tests/unit/timer_test.ts"],
  },
  {
    name: "tcp-nodelay-off",
    promise: "the broker socket sets TCP_NODELAY (design: no 40 ms delayed-ACK stalls)",
    edits: [edit("lib/mqtt/session.ts", "?.setNoDelay?.(true);", "?.setNoDelay?.(false);")],
    tests: ["tests/e2e/latency_e2e_test.ts"],
  },
  // TLS names (README "Broker addresses")
  {
    name: "sni-for-addresses",
    promise: "an IP address is never sent as SNI (RFC 6066; README: broker addresses)",
    edits: [
      edit(
        "lib/mqtt/broker_address.ts",
        'servername: address.kind === "name" ? address.host : undefined,',
        "servername: address.host,",
      ),
    ],
    tests: ["tests/e2e/mqtt_session_test.ts"],
    filter: "RFC 6066",
  },
  {
    name: "san-not-checked",
    promise: "a certificate that names another host or address is refused (README: broker addresses)",
    edits: [
      edit(
        "lib/mqtt/broker_address.ts",
        "const error = checkServerIdentity(address.host, certificate);",
        "const error = undefined;",
      ),
    ],
    tests: ["tests/e2e/broker_address_e2e_test.ts"],
  },
  // NATS (README "Local API")
  {
    name: "nats-two-replies",
    promise: "every NATS request gets exactly one reply (README: local API)",
    edits: [
      edit(
        "lib/nats/service.ts",
        "for (const subject of SUBJECTS) this.#serve(connection, subject);",
        "for (const subject of [...SUBJECTS, ...SUBJECTS]) this.#serve(connection, subject);",
      ),
    ],
    tests: ["tests/e2e/nats_api_test.ts"],
    filter: "empty, malformed",
  },
  {
    name: "nats-conf-inbox-open",
    promise: "the shipped NATS configuration keeps replies from guests (README: local API)",
    edits: [
      edit(
        "snap/nats-server.conf",
        'subscribe: { deny: ["snapd.>", "v1.snapd.>", "v1.iot.agent.>", "iot.agent.>", "_INBOX.>"] }',
        'subscribe: { deny: ["snapd.>", "v1.snapd.>", "v1.iot.agent.>", "iot.agent.>"] }',
      ),
    ],
    tests: ["tests/e2e/nats_api_test.ts"],
    filter: "attacked",
  },
  // snapd (docs/protocol.md §6)
  {
    name: "post-retried-after-sent",
    promise: "a POST that failed after it was sent is never retried (protocol §6)",
    edits: [
      edit(
        "lib/adapters/snapd_http.ts",
        'shouldRetry: (error) => method === "GET" || isConnectFailure(error),',
        "shouldRetry: () => true,",
      ),
    ],
    tests: ["tests/unit/snapd/client_test.ts"],
    filter: "POST that failed",
  },
  {
    name: "get-not-retried",
    promise: "a GET is retried whatever failed (protocol §6)",
    edits: [
      edit(
        "lib/adapters/snapd_http.ts",
        'shouldRetry: (error) => method === "GET" || isConnectFailure(error),',
        "shouldRetry: (error) => isConnectFailure(error),",
      ),
    ],
    tests: ["tests/unit/snapd/client_test.ts"],
    filter: "GET that failed",
  },
  {
    name: "fake-snapd-kinder-content-type",
    promise: "the fake snapd refuses what snapd refuses: a POST without a media type [101]",
    edits: [
      edit(
        "tests/support/fake_snapd.ts",
        'if (!type) return error(400, "cannot parse content type: mime: no media type");',
        "",
      ),
    ],
    tests: ["tests/unit/support/fake_snapd_test.ts"],
    filter: "captured snapd",
  },
  {
    name: "fake-snapd-kinder-apps",
    promise: "the fake snapd answers the apps of a missing snap as snapd does [123]",
    edits: [
      edit(
        "tests/support/fake_snapd.ts",
        'error(404, `snap "${snap}" not found`, "snap-not-found", snap); // [123]',
        "sync([]);",
      ),
    ],
    tests: ["tests/unit/support/fake_snapd_test.ts"],
    filter: "captured snapd",
  },
  {
    name: "log-userinfo-shown",
    promise: "a URL's user:password never reaches a log line, registered or not (README: secrets; nats.url)",
    edits: [edit("lib/log.ts", "  return hideUserinfo(out);\n", "  return out;\n")],
    tests: ["tests/unit/log_test.ts", "tests/e2e/nats_api_test.ts"],
    filter: "password",
  },
  {
    name: "setting-userinfo-shown",
    promise: "the start-up list of settings hides nats.url's user:password (README: nats.url)",
    edits: [edit("lib/settings.ts", 'show: (urls) => urls.map(hideUserinfo).join(","),', "")],
    tests: ["tests/unit/config_test.ts"],
    filter: "hide the user name",
  },
  // the logs action (README's action table)
  {
    name: "logs-limit-unbounded",
    promise: "a logs limit outside 1–10,000 is refused before snapd reads the journal (README: actions)",
    edits: [edit("lib/actions/logs.ts", " || limit < 0 || limit > MAX_LOG_LINES", "")],
    tests: ["tests/unit/actions/handlers_test.ts"],
    filter: "limit outside",
  },
  // logs (README: secrets never reach a line; design: values escaped)
  {
    name: "log-control-unescaped",
    promise: "a log record is one line: control characters escaped (design conventions)",
    edits: [
      edit(
        "lib/log.ts",
        "const CONTROL = /[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]/g;",
        "const CONTROL = /[\\u007f-\\u009f]/g;",
      ),
    ],
    tests: ["tests/unit/log_test.ts"],
  },
  {
    name: "secret-escaped-not-masked",
    promise: "a secret holding a quote or a backslash is masked too (README: secrets)",
    edits: [
      edit(
        "lib/log.ts",
        "for (const form of [value, json, escapeControl(value), escapeControl(json)]) {",
        "for (const form of [value]) {",
      ),
    ],
    tests: ["tests/unit/log_test.ts"],
  },
  // watchdog (README "Change logger and watchdog")
  {
    name: "watchdog-reboot-false-aborts",
    promise: "watchdog.reboot=false reports a hung change once and never aborts it",
    edits: [
      edit(
        "lib/watchdog.ts",
        "if (!store.wasReported(change.id)) return await this.#report(change, changes);",
        "if (!store.wasReported(change.id)) return await this.#report(change, changes);\n      return await this.#abort(change);",
      ),
    ],
    tests: ["tests/unit/watchdog_test.ts"],
    filter: "reboot=false",
  },
  {
    name: "watchdog-breaker-on-asked",
    promise: "only a reboot that happened (an earlier boot) counts for the breaker",
    edits: [
      edit(
        "lib/watchdog.ts",
        'if (store.reboot(change.id, boot.id) === "happened") {',
        'if (store.reboot(change.id, boot.id) !== "none") {',
      ),
    ],
    tests: ["tests/unit/watchdog_test.ts"],
    filter: "did not happen",
  },
  {
    name: "watchdog-count-restarts",
    promise: "a restart of the watchdog keeps the hang count within a boot",
    edits: [
      edit(
        "lib/watchdog.ts",
        "this.#running = options.store.watched(options.boot.id);",
        "this.#running = new Map();",
      ),
    ],
    tests: ["tests/unit/watchdog_test.ts"],
    filter: "keeps the count",
  },
  {
    name: "watchdog-wall-clock",
    promise: "a clock jump never makes a change hung (README: watchdog)",
    edits: [
      edit(
        "lib/watchdog.ts",
        "this.options.boot.uptimeMs() - since >= this.options.timeoutMs",
        "this.options.clock.now() - since >= this.options.timeoutMs",
      ),
    ],
    tests: ["tests/unit/watchdog_test.ts"],
    filter: "clock",
  },
  // configuration (README "Configuration")
  {
    name: "config-backoff-order",
    promise: "backoff.initial may not exceed backoff.max",
    edits: [edit("lib/config.ts", 'config["backoff.initial"] > config["backoff.max"]', "false")],
    tests: ["tests/unit/config_test.ts"],
    filter: "cross-field",
  },
  {
    name: "config-loose-counts",
    promise: "counts are plain whole numbers",
    edits: [edit("lib/settings.ts", "/^\\d+$/.test(text(raw).trim())", "true")],
    tests: ["tests/unit/config_test.ts"],
    filter: "plain whole",
  },
  {
    name: "config-duration-unbounded",
    promise: "durations are refused beyond Go's limit and keep-alive beyond 16 bits",
    edits: [edit("lib/settings.ts", "if (!(ms >= minMs && ms <= maxMs)) throw", "if (!(ms >= minMs)) throw")],
    tests: ["tests/unit/config_test.ts"],
    filter: "extremes",
  },
  {
    name: "configure-url-control-characters",
    promise: "configure --url refuses control characters (README: how enrollment works)",
    edits: [edit("lib/identity/params.ts", 'return "it contains a control character";', "return undefined;")],
    tests: ["tests/e2e/agent_e2e_test.ts"],
    filter: "configure --url refuses",
  },
  // files, status, doctor, the snap (README "On a device", "Files")
  {
    name: "database-not-private",
    promise: "every file the agent creates is 0600, the databases included (README: files)",
    edits: [edit("lib/store/database.ts", "  await makePrivate(path);\n  try {", "  try {")],
    tests: ["tests/e2e/agent_e2e_test.ts"],
    filter: "every file",
  },
  {
    name: "status-trusts-the-file",
    promise: "status checks that a daemon's process is alive (README: status)",
    edits: [
      edit(
        "lib/status_report.ts",
        '  if (!(await isRunning(file))) return { ...file, state: "failed" };\n',
        "",
      ),
    ],
    tests: ["tests/e2e/status_doctor_test.ts"],
    filter: "killed is reported",
  },
  {
    name: "status-always-zero",
    promise: "status exits 3 unless both daemons run (README: exit codes)",
    edits: [edit("lib/status_report.ts", '=== "running" ? 0 : 3;', '=== "running" ? 0 : 0;')],
    tests: ["tests/e2e/status_doctor_test.ts"],
    filter: "killed is reported",
  },
  {
    name: "doctor-moves-files",
    promise: "doctor changes nothing: a corrupt params is reported, not moved (README: doctor)",
    edits: [
      edit(
        "lib/doctor/doctor.ts",
        "  const params = await new ParamsFile(paths, log, {",
        "  await new ParamsFile(paths, log).read();\n  const params = await new ParamsFile(paths, log, {",
      ),
    ],
    tests: ["tests/e2e/status_doctor_test.ts"],
    filter: "read-only",
  },
  {
    name: "second-daemon-allowed",
    promise: "a second daemon on the data directory says who holds it and exits 75 (README: exit codes)",
    edits: [
      edit(
        "main.ts",
        "return await lockInstance(join(paths.dataDir, `${name}.lock`));",
        "return { release() {} };",
      ),
    ],
    tests: ["tests/e2e/agent_e2e_test.ts"],
    filter: "one line, no stack",
  },
  {
    name: "sighup-kills",
    promise: "SIGHUP stops a daemon cleanly (README: exit codes)",
    edits: [
      edit(
        "main.ts",
        'for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {',
        'for (const signal of ["SIGTERM", "SIGINT"] as const) {',
      ),
    ],
    tests: ["tests/e2e/agent_e2e_test.ts"],
    filter: "SIGHUP stops",
  },
  {
    name: "snap-daemon-command-takes-arguments",
    promise: "every snap command the README documents works as snapd composes it (README: on a device)",
    edits: [
      edit(
        "snap/snapcraft.yaml",
        "  iot-agent:\n    command: bin/agent\n",
        "  iot-agent:\n    command: bin/agent run\n",
      ),
    ],
    tests: ["tests/e2e/snap_test.ts"],
    filter: "documents works",
  },
  // in the field (README: systemd's watchdog, a refresh that checks itself)
  {
    name: "watchdog-pings-regardless",
    promise: "WATCHDOG=1 only while every liveness check passes (README: systemd's watchdog)",
    edits: [
      edit(
        "lib/liveness.ts",
        "    if (problem) {\n      this.#failures.failed(",
        "    if (false) {\n      this.#failures.failed(",
      ),
    ],
    tests: ["tests/unit/liveness_test.ts"],
  },
  {
    name: "agent-never-ready",
    promise: "the daemon says READY=1 once serving and pings (README: systemd's watchdog)",
    edits: [edit("lib/agent.ts", "    await liveness?.ready();", "")],
    tests: ["tests/e2e/systemd_notify_test.ts"],
    filter: "the agent daemon",
  },
  {
    name: "health-never-error",
    promise: "the snap's health says error when no broker for health.unreachable-error (README: refresh)",
    edits: [
      edit(
        "lib/agent.ts",
        'if (link && down > this.#options.config["health.unreachable-error"]) {',
        "if (false) {",
      ),
    ],
    tests: ["tests/e2e/snap_health_test.ts"],
    filter: "okay with a broker",
  },
  {
    name: "check-ignores-enrollment",
    promise: "agent check fails a revision that cannot read the enrollment (post-refresh reverts)",
    edits: [
      edit(
        "lib/self_check.ts",
        "return `.secret is readable: device ${decodeEnrollment(JSON.parse(text)).id}`;",
        'return ".secret is there";',
      ),
    ],
    tests: ["tests/e2e/snap_test.ts"],
    filter: "post-refresh",
  },
  // proxies (README "Behind a proxy")
  {
    name: "broker-not-tunnelled",
    promise: "the MQTT link goes through the https proxy, in a CONNECT tunnel (README: proxy)",
    edits: [
      edit(
        "lib/net/agent_proxies.ts",
        "return proxy ? tunnel(proxy, host, port, timeoutMs) : Promise.resolve(undefined);",
        "return Promise.resolve(proxy && undefined);",
      ),
    ],
    tests: ["tests/e2e/proxy_test.ts"],
    filter: "through a real proxy with credentials",
  },
  {
    name: "no-proxy-ignored",
    promise: "hosts in NO_PROXY / proxy.no-proxy are dialled directly (README: proxy)",
    edits: [edit("lib/net/proxy.ts", 'if (entry === "*") return true;', "return false;")],
    tests: ["tests/e2e/proxy_test.ts"],
    filter: "NO_PROXY",
  },
  {
    name: "proxy-environment-left",
    promise: "the agent applies the proxy variables itself: NO_PROXY=localhost does not break snapd's socket",
    edits: [edit("lib/net/proxy.ts", "for (const name of PROXY_VARIABLES) Deno.env.delete(name);", "")],
    tests: ["tests/e2e/proxy_test.ts"],
    filter: "NO_PROXY",
  },
  {
    name: "snapd-proxy-ignored",
    promise: "snapd's own proxy settings are used when nothing else names a proxy (README: proxy)",
    edits: [edit("lib/net/agent_proxies.ts", "https: text(system.https),", "")],
    tests: ["tests/e2e/proxy_test.ts"],
    filter: "NO_PROXY",
  },
  {
    name: "proxy-password-shown",
    promise: "a proxy's password never appears in a log line or a report (README: proxy)",
    edits: [
      edit(
        "lib/net/proxy.ts",
        "if (!proxy.username && !proxy.password) return proxy.origin;",
        "return proxy.href;",
      ),
    ],
    tests: ["tests/e2e/proxy_test.ts"],
  },
  {
    name: "upload-direct",
    promise: "uploads go through the proxy that applies to their URL (README: proxy)",
    edits: [
      edit(
        "lib/uploads.ts",
        "const proxy = options.proxies && proxyFor(",
        "const proxy = undefined && options.proxies && proxyFor(",
      ),
    ],
    tests: ["tests/e2e/proxy_test.ts"],
    filter: "upload",
  },
  {
    name: "doctor-broker-direct",
    promise: "agent doctor reaches the broker the way the agent does, through its proxy (README: doctor)",
    edits: [
      edit(
        "lib/doctor/network_checks.ts",
        "const proxy = proxies && proxyFor(",
        "const proxy = undefined && proxies && proxyFor(",
      ),
    ],
    tests: ["tests/e2e/proxy_test.ts"],
    filter: "doctor",
  },
  // broker failover (README "Broker clusters and failover")
  {
    name: "first-address-only",
    promise: "every address of the broker's name is tried, IPv6 and IPv4 (README: failover)",
    edits: [
      edit(
        "lib/mqtt/broker_rotation.ts",
        "const dial = addresses.length > 0 ? addresses : [broker.host];",
        "const dial = [addresses[0] ?? broker.host];",
      ),
    ],
    tests: ["tests/e2e/broker_failover_test.ts"],
    filter: "the dead one is passed over",
  },
  {
    name: "dead-address-warned",
    promise:
      "a dead address of a live broker is no warning, only a round that fails entirely (README: failover)",
    edits: [edit("lib/mqtt/broker_failover.ts", "if (!this.#rotation.roundOver) {", "if (false) {")],
    tests: ["tests/e2e/broker_failover_test.ts"],
    filter: "the dead one is passed over",
  },
  {
    name: "more-brokers-ignored",
    promise: "the brokers of mqtt.brokers are tried after the identity service's (README: failover)",
    edits: [
      edit(
        "lib/mqtt/session.ts",
        "brokerAddress(options.host, options.port), ...options.moreBrokers ?? []",
        "brokerAddress(options.host, options.port)",
      ),
    ],
    tests: ["tests/e2e/broker_failover_test.ts"],
    filter: "mqtt.brokers",
  },
  {
    name: "no-failback",
    promise: "the agent moves back to the first broker once it answers (README: failover)",
    edits: [edit(
      "lib/mqtt/session.ts",
      "if (this.#failover.connected(o.clientId)) this.#moveBackWhenFirstAnswers(client);",
      "this.#failover.connected(o.clientId);",
    )],
    tests: ["tests/e2e/broker_failover_test.ts"],
    filter: "mqtt.brokers",
  },
  {
    name: "failback-next-in-round",
    promise:
      "after a connection drops or moves back, the next attempt starts from the first broker (protocol §2)",
    edits: [edit("lib/mqtt/session.ts", "this.#failover.restart(); // the first broker first again", "")],
    tests: ["tests/e2e/broker_failover_test.ts"],
    filter: "mqtt.brokers",
  },
  {
    name: "local-nats-proxied",
    promise:
      "the device's own NATS server is never proxied; a remote one goes through the proxy (README: proxy)",
    edits: [
      edit(
        "lib/net/agent_proxies.ts",
        "LOCAL_NAMES.has(host.toLowerCase())",
        "false",
      ),
    ],
    tests: ["tests/e2e/proxy_test.ts"],
    filter: "remote NATS",
  },
  {
    name: "remote-nats-direct",
    promise: "a remote NATS server is reached through the https proxy (README: proxy)",
    edits: [
      edit(
        "lib/adapters/nats_connect.ts",
        "internals.dial = async (hp) => (await dialer(hp.hostname, hp.port)) ?? await direct(hp);",
        "internals.dial = direct;",
      ),
    ],
    tests: ["tests/e2e/proxy_test.ts"],
    filter: "remote NATS",
  },
  {
    name: "recovery-runs-unknown",
    promise:
      "a started action whose outcome cannot be known is answered with an error, never run (protocol §3)",
    edits: [
      edit(
        "lib/dms/action_life.ts",
        'if (effect === "unknown") {',
        'if (effect === "unknown") return { step: "run" };\n  if (false) {',
      ),
    ],
    tests: ["tests/unit/dms/action_life_test.ts"],
  },
  {
    name: "phase-never-waiting",
    promise:
      "status and v1.iot.agent.status name the agent's phase: waiting for a URL until params has one (README: status)",
    edits: [edit("lib/identity/enroller.ts", 'this.#phase = "waiting for a URL";', "")],
    tests: ["tests/e2e/nats_api_test.ts"],
    filter: "before enrollment the status subjects say so",
  },
  {
    name: "upload-ip-servername",
    promise:
      "an upload to https://<IP address> through a proxy verifies that address, sending no SNI (README: uploads)",
    edits: [edit("lib/uploads.ts", "...tlsTarget(url)", "servername: url.hostname")],
    tests: ["tests/e2e/proxy_test.ts"],
    filter: "https://<IP address>",
  },
  {
    name: "failed-change-at-debug",
    promise:
      "a change that fails after its action was answered is warned with snapd's error and counted (README: status)",
    edits: [
      edit("lib/dms/snap_order.ts", 'outcome.kind === "ready" && outcome.change.status === "Error"', "false"),
    ],
    tests: ["tests/unit/dms/snap_order_test.ts"],
    filter: "ends in Error",
  },
  // the local API with the published default password (README "Safe by default")
  {
    name: "nats-default-password-writes",
    promise:
      "while nats.snapd.password is the published default every write subject is refused (README: NATS)",
    edits: [
      edit(
        "lib/nats/api.ts",
        "if (definition.writes && ports.writeRefusal) return definition.failure(ports.writeRefusal);",
        "",
      ),
    ],
    tests: ["tests/e2e/nats_api_test.ts"],
    filter: "published default password",
  },
  {
    name: "nats-ca-ignored",
    promise: "with nats.ca set a rogue plain-text listener on the NATS port reads no password (README: NATS)",
    edits: [edit("lib/nats/service.ts", "            ...(ca ? { tls: { ca } } : {}),\n", "")],
    tests: ["tests/e2e/nats_api_test.ts"],
    filter: "rogue plain-text listener",
  },
  {
    name: "status-default-password-silent",
    promise: "status says on its NATS line that the writes are refused, and why (README: NATS)",
    edits: [edit("lib/status_report.ts", 'nats.writesRefused ? `; every ${nats.writesRefused}` : ""', '""')],
    tests: ["tests/e2e/status_doctor_test.ts"],
    filter: "default NATS password",
  },
  {
    name: "doctor-cleartext-silent",
    promise: "doctor warns that the NATS password travels in clear without nats.ca (README: NATS)",
    edits: [
      edit(
        "lib/doctor/doctor.ts",
        "results.push(await checkNats(config, hints, options.natsConnect), checkNatsTransport(config));",
        "results.push(await checkNats(config, hints, options.natsConnect));",
      ),
    ],
    tests: ["tests/e2e/status_doctor_test.ts"],
    filter: "default NATS password",
  },
  // no enrollment in clear text (README "How enrollment works"; docs/protocol.md §1)
  {
    name: "identity-http-accepted",
    promise:
      "an http:// identity URL outside loopback is refused without identity.allow-insecure-http (README)",
    edits: [
      edit(
        "lib/identity/params.ts",
        "if (options.allowInsecureHttp || !travelsInClearText(url)) return undefined;",
        "return undefined;",
      ),
    ],
    tests: ["tests/e2e/clear_text_enrollment_test.ts", "tests/e2e/snap_test.ts"],
    filter: "/outside loopback is refused|man in the middle/",
  },
  {
    name: "params-url-unchecked",
    promise:
      "a params file (the Go agent's) holding an http:// URL outside loopback is never dialled (protocol §1)",
    edits: [edit("lib/identity/params.ts", "      validateIdentityUrl(url.trim(), this.options);\n", "")],
    tests: ["tests/e2e/clear_text_enrollment_test.ts"],
    filter: "man in the middle",
  },
  {
    name: "clear-text-root-trusted",
    promise: "a root certificate that came over plain http is never the only trust for the broker (README)",
    edits: [
      edit(
        "lib/mqtt/tls.ts",
        "if (options.organizationRootFrom && travelsInClearText(options.organizationRootFrom)) {",
        "if (false) {",
      ),
    ],
    tests: ["tests/e2e/clear_text_enrollment_test.ts"],
    filter: "not trusted alone",
  },
  // the configure hook and parallel installs (README "On a device")
  {
    name: "hook-same-url-ignored",
    promise: "after unregister, setting the same URL again writes params (README: unregister)",
    edits: [
      edit(
        "snap/hooks/configure",
        ' || ! grep -qF "{\\"url\\":\\"$url\\"," "$params" 2>/dev/null; }',
        "; }",
      ),
    ],
    tests: ["tests/e2e/snap_test.ts"],
    filter: "same URL again",
  },
  {
    name: "hook-unset-keeps-params",
    promise: "snap unset url removes params: the withdrawn URL is not used to enroll (README: configuration)",
    edits: [edit("snap/hooks/configure", '  rm -f "$params"\n', "  :\n")],
    tests: ["tests/e2e/snap_test.ts"],
    filter: "same URL again",
  },
  {
    name: "hook-snap-name",
    promise: "the configure hook restarts its own instance's daemons in a parallel install (README)",
    edits: [
      edit(
        "snap/hooks/configure",
        'snapctl restart "$SNAP_INSTANCE_NAME.agent"',
        'snapctl restart "$SNAP_NAME.agent"',
      ),
    ],
    tests: ["tests/e2e/snap_test.ts"],
    filter: "parallel install",
  },
  {
    name: "unregister-snap-name",
    promise: "unregister stops and starts its own instance's agent in a parallel install (README)",
    edits: [
      edit(
        "unregister.ts",
        "const service = `${paths.snapName}.agent`;",
        'const service = `${Deno.env.get("SNAP_NAME")}.agent`;',
      ),
    ],
    tests: ["tests/e2e/snap_test.ts"],
    filter: "parallel install",
  },
  // bounds by bytes (design: every queue and store has a bound)
  {
    name: "identity-answer-buffered",
    promise: "an identity answer without Content-Length is cut at 1 MiB while streaming, never read whole",
    edits: [edit("lib/adapters/identity_http.ts", "if (length > MAX_RESPONSE_BYTES) {", "if (false) {")],
    tests: ["tests/unit/identity/identity_answer_limit_test.ts"],
  },
  {
    name: "request-id-unbounded",
    promise: "a request id over 256 characters is refused, cut to 256 (docs/protocol.md §2 Payloads)",
    edits: [edit("lib/dms_protocol/messages.ts", "if (id.length > MAX_ID_LENGTH) {", "if (false) {")],
    tests: ["tests/unit/dms/request_bounds_test.ts", "tests/e2e/agent_e2e_test.ts"],
    filter: "/over 256/",
  },
  {
    name: "request-action-unbounded",
    promise: "a request action over 64 characters is refused, cut to 64 (docs/protocol.md §2 Payloads)",
    edits: [edit("lib/dms_protocol/messages.ts", "if (action.length > MAX_ACTION_LENGTH) {", "if (false) {")],
    tests: ["tests/unit/dms/request_bounds_test.ts"],
    filter: "over 64",
  },
  // floods and bounds (README "Bounds under load"; docs/protocol.md §3)
  {
    name: "reply-size-unbounded",
    promise:
      "a reply over mqtt.max-reply-bytes is replaced by an error naming its size (README: Bounds under load)",
    edits: [edit("lib/dms/reply_size.ts", "if (bytes <= maxBytes) return payload;", "return payload;")],
    tests: ["tests/e2e/oversized_reply_test.ts"],
    filter: "answered with its size",
  },
  {
    name: "refused-reply-retried-forever",
    promise:
      "a reply the broker keeps refusing is set aside and the replies after it go out (README: Bounds under load)",
    edits: [edit("lib/dms/outbox.ts", "if (lostInFlight(error) && this.#refused(entry)) continue;", "")],
    tests: ["tests/e2e/oversized_reply_test.ts"],
    filter: "set aside after three tries",
  },
  {
    name: "uploads-share-snap-queue",
    promise: "a stalled upload holds no device, server or list (README: Bounds under load)",
    edits: [
      edit(
        "lib/dms/queue_key.ts",
        "UPLOAD_ACTIONS.has(request.action) ? UPLOAD_QUEUE : request.snap",
        "request.snap",
      ),
    ],
    tests: ["tests/e2e/upload_stall_test.ts"],
    filter: "holds no device",
  },
  {
    name: "upload-without-deadline",
    promise: "an upload the server never answers fails at uploads.timeout (README: Bounds under load)",
    edits: [
      edit("lib/uploads.ts", 'request.on("close", () => clearTimeout(deadline));', "clearTimeout(deadline);"),
    ],
    tests: ["tests/e2e/upload_stall_test.ts"],
    filter: "fails at uploads.timeout",
  },
  // the local API under a flood (README: Bounds under load; docs/protocol.md §5; asyncapi.yaml)
  {
    name: "nats-requests-unbounded",
    promise:
      "beyond nats.max-in-flight and nats.max-waiting a local request is answered busy (README: Bounds under load)",
    edits: [
      edit(
        "lib/nats/service.ts",
        "this.#ports = { ...options.ports, gate: new RequestGate(bounds) };",
        "this.#ports = options.ports;",
      ),
    ],
    tests: ["tests/e2e/nats_flood_test.ts"],
  },
  {
    name: "nats-waiting-unbounded",
    promise: "local requests wait in a bounded queue (README: Bounds under load)",
    edits: [edit("lib/nats/request_gate.ts", "if (this.#waiting.length >= maxWaiting ||", "if (false ||")],
    tests: ["tests/e2e/nats_flood_test.ts"],
  },
  {
    name: "nats-invalid-waits-its-turn",
    promise: "an invalid local request is answered at once, not behind valid ones (asyncapi.yaml)",
    edits: [
      edit("lib/nats/api.ts", "    definition.check?.(request, tokens);\n", ""),
      edit(
        "lib/nats/api.ts",
        "const handle = () => definition.handle(request, ports, tokens);",
        "const handle = () => (definition.check?.(request, tokens), definition.handle(request, ports, tokens));",
      ),
    ],
    tests: ["tests/e2e/nats_flood_test.ts"],
  },
  {
    name: "nats-snapd-not-yielding",
    promise: "the DMS's actions take snapd's free turns before local requests (README: Bounds under load)",
    edits: [
      edit(
        "main.ts",
        "ports: { snapd: snapd.yielding(), status, writeRefusal }",
        "ports: { snapd, status, writeRefusal }",
      ),
    ],
    tests: ["tests/e2e/nats_flood_test.ts"],
  },
  {
    name: "limiter-without-priority",
    promise: "a yielding task takes a turn only when no first task waits (lib/limiter.ts)",
    edits: [
      edit(
        "lib/limiter.ts",
        "this.#waiting.first.shift() ?? this.#waiting.yielding.shift()",
        "this.#waiting.yielding.shift() ?? this.#waiting.first.shift()",
      ),
    ],
    tests: ["tests/unit/limiter_test.ts", "tests/e2e/nats_flood_test.ts"],
  },
  // the journal's bound in bytes (README: Bounds under load; docs/protocol.md §3)
  {
    name: "journal-bytes-unbounded",
    promise: "beyond journal.max-bytes the oldest done entries are forgotten (README: Bounds under load)",
    edits: [edit("lib/dms/journal.ts", "if (this.bytes.total > this.#maxBytes)", "if (false)")],
    tests: ["tests/unit/dms/journal_bytes_test.ts"],
    filter: "200 requests of 200 KiB",
  },
  {
    name: "journal-prune-not-vacuumed",
    promise: "the pages of forgotten entries are given back to the file system (README: Bounds under load)",
    edits: [edit("lib/dms/journal.ts", 'statement(this.db, "PRAGMA incremental_vacuum").all();', "")],
    tests: ["tests/unit/dms/journal_bytes_test.ts"],
    filter: "gives the space back",
  },
  {
    name: "journal-prune-not-checkpointed",
    promise: "freed pages leave the file at once, not at the next checkpoint (README: Bounds under load)",
    edits: [edit("lib/dms/journal.ts", 'this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");', "")],
    tests: ["tests/unit/dms/journal_bytes_test.ts"],
    filter: "gives the space back",
  },
  {
    name: "wal-never-cut",
    promise: "the WAL is cut back to 1 MiB each time it starts over (README: Bounds under load)",
    edits: [edit("lib/store/database.ts", "db.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT};`);", "")],
    tests: ["tests/unit/dms/journal_bytes_test.ts"],
    filter: "cut back",
  },
  {
    name: "journal-forgets-unsent",
    promise: "an id whose reply is not yet acknowledged is never forgotten by the byte bound (protocol §3)",
    edits: [
      edit("lib/dms/journal.ts", " AND NOT EXISTS (SELECT 1 FROM outbox WHERE action_id = actions.id)", ""),
    ],
    tests: ["tests/unit/dms/journal_bytes_test.ts"],
    filter: "never forgotten",
  },
  {
    name: "waiting-actions-unbounded",
    promise: "beyond actions.max-waiting the next PUBACK is withheld (README: Bounds under load)",
    edits: [edit("lib/dms/delivery.ts", "if (this.#admission.full) return", "if (false) return")],
    tests: ["tests/unit/dms/admission_test.ts"],
  },
  {
    name: "waiting-room-freed-late",
    promise:
      "room is made when an action is answered, never by an incoming packet (README: Bounds under load)",
    edits: [edit("lib/dms/delivery.ts", "    this.#admission.leave(response.id);\n", "")],
    tests: ["tests/unit/dms/admission_test.ts"],
  },
];
