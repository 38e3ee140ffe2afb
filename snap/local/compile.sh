#!/bin/sh
# Builds the self-contained executables with `deno compile`: dist/agent (main.ts) and dist/unregister
# (unregister.ts) for this machine, and with an argument for that target (x86_64-unknown-linux-gnu or
# aarch64-unknown-linux-gnu) into dist/<target>/. `deno compile` downloads its runtime (denort) unless DENORT_BIN
# names a local one, which must be for the target being built.
#
# Permissions baked into the executables, each because the code needs it:
#   agent
#     --allow-read    state files in $SNAP_DATA/$SNAP_COMMON, the snapd socket, CA bundles, the system trust store
#     --allow-write   state files (params, .secret, device-data.bin, agent.db, changes.db, reports, status files)
#     --allow-net     the identity service, the MQTT broker, the NATS server, uploads, and the snapd unix socket
#     --allow-env     configuration (IOTAGENT_*) and the snap's environment ($SNAP_DATA, …)
#     --allow-run     snapctl (snap configuration, service control), systemctl (the watchdog's reboot, through the
#                     shutdown interface), cat (Deno reads /proc only with --allow-all; cat reads /proc/meminfo and
#                     /proc/stat for the metrics and grants nothing --allow-read does not)
#     --allow-sys     the user id (is it root?) and the free disk space (doctor)
#     --unstable-net  a unix datagram socket, to notify systemd (READY=1, WATCHDOG=1: `daemon: notify`)
#   unregister
#     --allow-read, --allow-write  $SNAP_DATA; --allow-env  $SNAP_*; --allow-run=snapctl  stop/start the agent;
#     --allow-sys=uid  refuse to run as a user other than root inside the snap
#
# V8 flags baked into the agent (the same as `deno task start`; measured with `deno task bench`, see
# docs/performance.md): --max-semi-space-size=1 keeps the young generation at 1 MB per semi-space instead of
# letting it grow to 16 (about 40 MB of heap reserved for nothing on an I/O-bound daemon); --lite-mode runs
# without the optimising compilers (about 6 MB less, no measurable latency cost at the agent's load);
# --single-threaded-gc spares the GC helper threads.
set -eu
cd "$(dirname "$0")/../.."

target="${1:-}"
out="dist"
target_flag=""
if [ -n "$target" ]; then
  out="dist/$target"
  target_flag="--target=$target"
fi
mkdir -p "$out"

agent_flags="--v8-flags=--max-semi-space-size=1,--lite-mode,--single-threaded-gc --unstable-net"
agent_flags="$agent_flags --allow-read --allow-write --allow-net --allow-env --allow-sys"
agent_flags="$agent_flags --allow-run=/usr/bin/snapctl,/usr/bin/systemctl,cat"
unregister_flags="--allow-read --allow-write --allow-env --allow-run=/usr/bin/snapctl --allow-sys=uid"

# shellcheck disable=SC2086 # the flag lists are meant to split into words
deno compile --frozen $target_flag $agent_flags --output "$out/agent" main.ts
# shellcheck disable=SC2086
deno compile --frozen $target_flag $unregister_flags --output "$out/unregister" unregister.ts
echo "built $out/agent and $out/unregister"
