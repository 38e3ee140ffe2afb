import { assertEquals, assertThrows } from "../support/assert.ts";
import { formatDuration, parseDuration } from "../../lib/duration.ts";

Deno.test("parseDuration reads Go duration syntax", () => {
  const cases: [string, number][] = [
    ["90s", 90_000],
    ["1h", 3_600_000],
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["250ms", 250],
    ["2m3.5s", 123_500],
    ["1500us", 1.5],
    ["0", 0],
    ["-1m", -60_000],
  ];
  for (const [text, ms] of cases) assertEquals(parseDuration(text), ms, text);
});

Deno.test("parseDuration rejects what Go rejects", () => {
  for (const text of ["", "30", "1x", "h", "1h 30m", "1.2.3s", "-", "s1"]) {
    assertThrows(() => parseDuration(text), RangeError, undefined, text);
  }
  assertThrows(() => parseDuration("30"), RangeError, "missing unit");
});

Deno.test("formatDuration prints as Go does", () => {
  assertEquals(formatDuration(0), "0s");
  assertEquals(formatDuration(250), "250ms");
  assertEquals(formatDuration(1500), "1.5s");
  assertEquals(formatDuration(90_000), "1m30s");
  assertEquals(formatDuration(5_400_000), "1h30m0s");
});
