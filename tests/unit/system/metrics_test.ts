import { assertEquals, assertMatch, assertThrows } from "../../support/assert.ts";
import { cpuLine, memoryLine, readMetrics } from "../../../lib/system/metrics.ts";

const MEMINFO = `MemTotal:        2000000 kB
MemFree:          500000 kB
MemAvailable:    1200000 kB
Buffers:          100000 kB
Cached:           300000 kB
SwapCached:            0 kB
SReclaimable:      50000 kB
`;

const STAT = `cpu  5661 10 3329 236456 424 5 211 1321 7 0
cpu0 2215 0 1423 119349 52 0 17 622 0 0
intr 1 2 3
`;

Deno.test("memory line: gopsutil semantics, Influx line protocol, six decimals", () => {
  // used = total - free - buffers - (cached + sreclaimable) = 2000000 - 500000 - 100000 - 350000 = 1050000 kB
  assertEquals(
    memoryLine("dev1", MEMINFO),
    "memory,device=dev1 total=2048000000,used=1075200000,usedpc=52.500000",
  );
  assertThrows(() => memoryLine("dev1", "nothing here"), Error, "MemTotal");
});

Deno.test("cpu line: cumulative seconds from the aggregate line, total without guest time", () => {
  // user 56.61, system 33.29, total = (5661+10+3329+236456+424+5+211+1321)/100 = 2474.17
  assertEquals(cpuLine("dev1", STAT), "cpu,device=dev1 user=56.610000,system=33.290000,total=2474.170000");
  assertThrows(() => cpuLine("dev1", "intr 1"), Error, "cpu");
});

Deno.test("tag values are escaped", () => {
  assertMatch(memoryLine("a b,c=d", MEMINFO), /^memory,device=a\\ b\\,c\\=d total=/);
});

Deno.test("readMetrics skips a source that fails and reports it; the real /proc is readable", async () => {
  const errors: string[] = [];
  const lines = await readMetrics(
    "d",
    (e) => errors.push(e.message),
    (path) => path === "/proc/meminfo" ? Promise.reject(new Error("gone")) : Promise.resolve(STAT),
  );
  assertEquals(lines, ["cpu,device=d user=56.610000,system=33.290000,total=2474.170000"]);
  assertEquals(errors, ["gone"]);
  const real = await readMetrics("d", (e) => errors.push(e.message));
  assertEquals(real.length, 2);
  assertMatch(real[0], /^memory,device=d total=\d+,used=-?\d+,usedpc=-?\d+\.\d{6}$/);
  assertMatch(real[1], /^cpu,device=d user=\d+\.\d{6},system=\d+\.\d{6},total=\d+\.\d{6}$/);
});
