/**
 * What `deno task bench` measures of one agent — this one or the Go agent, the same way, in the same world: round
 * trips of `device`, `list` and `info` through the broker, the resident memory over a run of 10,000 actions (sampled
 * for the chart), its growth, the `device` latency at the start and the end of the run, idle CPU and bytes written,
 * and the time from spawn to the first answered action.
 */
import type { Child } from "./child.ts";
import { bytesWrittenBy, cpuSecondsOf, memoryOf, percentile } from "./proc_stats.ts";
import { sleep } from "./wait.ts";
import type { World } from "./world.ts";

/** An agent under measurement. */
export interface AgentUnderTest {
  /** "this agent", "Go agent". */
  name: string;
  /** Its device id (where its actions go). */
  id: string;
  process(): Child;
  /** Starts it again (after a stop), for the spawn figure; resolves with the new process. */
  spawn(): Promise<Child> | Child;
}

/** How many of each. */
export interface Counts {
  roundTrips: number;
  early: number;
  total: number;
  idleSeconds: number;
  spawns: number;
}

/** The figures of one agent. */
export interface AgentFigures {
  device: number[];
  list: number[];
  info: number[];
  /** (actions done, RSS in bytes) over the long run. */
  rss: [number, number][];
  rssAt: { start: number; early: number; end: number };
  anonAt: { start: number; early: number; end: number };
  /** `device` p99 of the first and the last tenth of the long run. */
  p99Windows: { first: number; last: number };
  idleCpuPercent: number;
  idleKiBPerMinute: number;
  spawnMs: number[];
}

/** Round-trip times of `count` requests of one action, in ms; a failed reply fails the bench. */
export async function roundTrips(
  world: World,
  id: string,
  action: string,
  count: number,
  snap = "",
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const reply = await world.dms.request(id, { action, snap });
    times.push(performance.now() - started);
    if (reply.success !== true && action !== "device") {
      throw new Error(`${action} failed: ${JSON.stringify(reply)}`);
    }
  }
  return times;
}

/** Measures `agent` in `world`. */
export async function measureAgent(world: World, agent: AgentUnderTest, n: Counts): Promise<AgentFigures> {
  const log = (text: string) => console.error(`bench: ${agent.name}: ${text}`);
  await roundTrips(world, agent.id, "device", 20); // warm-up
  await sleep(2000);
  const pid = () => agent.process().pid;
  const start = memoryOf(pid());
  const device = await roundTrips(world, agent.id, "device", n.roundTrips);
  log(`device p50 ${percentile(device, 50).toFixed(1)} ms`);
  const list = await roundTrips(world, agent.id, "list", Math.max(10, n.roundTrips / 5));
  log(`list p50 ${percentile(list, 50).toFixed(1)} ms`);
  const info = await roundTrips(world, agent.id, "info", Math.max(10, n.roundTrips / 5), "peer-svc");

  const rss: [number, number][] = [[0, start.rss]];
  const windows: number[][] = [];
  const batch = n.total / 10;
  let done = 0;
  let early = start;
  while (done < n.total) {
    const times: number[] = [];
    for (let step = 0; step < batch; step += batch / 4) {
      times.push(...await roundTrips(world, agent.id, "device", batch / 4));
      done += batch / 4;
      rss.push([done, memoryOf(pid()).rss]);
      if (done >= n.early && early === start) early = memoryOf(pid());
    }
    windows.push(times);
  }
  const end = memoryOf(pid());
  log(`RSS ${(end.rss / 1048576).toFixed(1)} MB after ${n.total} actions`);

  await sleep(5000); // the last replies' bookkeeping
  const cpu = cpuSecondsOf(pid());
  const written = bytesWrittenBy(pid());
  await sleep(n.idleSeconds * 1000);
  const idleCpuPercent = (cpuSecondsOf(pid()) - cpu) / n.idleSeconds * 100;
  const idleKiBPerMinute = (bytesWrittenBy(pid()) - written) / (n.idleSeconds / 60) / 1024;

  const spawnMs: number[] = [];
  for (let i = 0; i < n.spawns; i++) {
    await agent.process().stop();
    const started = performance.now();
    await agent.spawn();
    await world.dms.request(agent.id, { action: "device" }, 60_000); // the broker keeps it for the session
    spawnMs.push(performance.now() - started);
  }
  return {
    device,
    list,
    info,
    rss,
    rssAt: { start: start.rss, early: early.rss, end: end.rss },
    anonAt: { start: start.anon, early: early.anon, end: end.anon },
    p99Windows: { first: percentile(windows[0], 99), last: percentile(windows.at(-1)!, 99) },
    idleCpuPercent,
    idleKiBPerMinute,
    spawnMs,
  };
}
