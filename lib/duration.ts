/**
 * Go duration syntax (`time.ParseDuration`): a sequence of decimal numbers, each with an optional fraction
 * and a unit, e.g. `90s`, `1h30m`, `1.5h`, `250ms`. Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`.
 * A bare `0` is allowed. Values are handled in milliseconds, the unit of every timer in the agent.
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const TERM = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a Go duration string into milliseconds (fractions below a millisecond are kept).
 * @throws {RangeError} when the text is not a Go duration.
 */
export function parseDuration(text: string): number {
  const input = text.trim();
  if (input === "0" || input === "+0" || input === "-0") return 0;
  let sign = 1;
  let rest = input;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "") throw new RangeError(`invalid duration "${text}"`);
  let total = 0;
  TERM.lastIndex = 0;
  while (TERM.lastIndex < rest.length) {
    const start = TERM.lastIndex;
    const match = TERM.exec(rest);
    if (!match) {
      const tail = rest.slice(start);
      const reason = /^[\d.]+$/.test(tail) ? "missing unit" : "unknown unit or malformed number";
      throw new RangeError(`invalid duration "${text}": ${reason}`);
    }
    total += Number(match[1]) * UNIT_MS[match[2]];
  }
  return sign * total;
}

/** Formats milliseconds the way Go prints a duration (`1h30m0s`, `1.5s`, `250ms`, `0s`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  const sign = ms < 0 ? "-" : "";
  let rest = Math.abs(ms);
  if (rest < 1000) return `${sign}${trimNumber(rest)}ms`;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = trimNumber(rest / 1000);
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${seconds}s`;
}

function trimNumber(value: number): string {
  return String(Number(value.toFixed(6)));
}
