/**
 * Line and bar charts as plain SVG, drawn from a run's own numbers (the benches write them next to
 * docs/performance.md): axes with a few round ticks, one polyline per series, a legend. No library: a chart is a
 * few dozen elements.
 */

/** One line of a chart: its points (x, y) and its name in the legend. */
export interface Series {
  name: string;
  points: [number, number][];
}

/** Options of {@link lineChart}. */
export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Draw bars (one per point of the first series) instead of lines. @default false */
  bars?: boolean;
  /** A horizontal line, e.g. a target. */
  limit?: { y: number; label: string };
  /** Log scale on x (for latency distributions with a long tail). @default false */
  logX?: boolean;
}

const WIDTH = 720;
const HEIGHT = 360;
const MARGIN = { left: 64, right: 20, top: 36, bottom: 52 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/** A "nice" step for about `count` ticks over `span`. */
function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) ?? power * 10;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function format(value: number): string {
  return Math.abs(value) >= 1000
    ? `${(value / 1000).toFixed(value % 1000 === 0 ? 0 : 1)}k`
    : String(+value.toFixed(2));
}

/** The chart, as an SVG document. */
export function lineChart(series: Series[], options: ChartOptions): string {
  const all = series.flatMap((s) => s.points);
  const xs = all.map(([x]) => (options.logX ? Math.log10(Math.max(x, 1e-3)) : x));
  const ys = all.map(([, y]) => y).concat(options.limit ? [options.limit.y] : []);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const yMax = Math.max(...ys, 0) * 1.08 || 1;
  const yMin = Math.min(0, ...ys);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) =>
    MARGIN.left + ((options.logX ? Math.log10(Math.max(x, 1e-3)) : x) - x0) / (x1 - x0 || 1) * plotW;
  const sy = (y: number) => MARGIN.top + plotH - (y - yMin) / (yMax - yMin || 1) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="14">${escape(options.title)}</text>`,
  ];
  const yStep = niceStep(yMax - yMin, 5);
  for (let y = Math.ceil(yMin / yStep) * yStep; y <= yMax; y += yStep) {
    out.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${sy(y)}" y2="${sy(y)}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${sy(y) + 4}" text-anchor="end">${format(y)}</text>`,
    );
  }
  const xTicks = options.logX
    ? [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000].filter((x) => {
      const l = Math.log10(x);
      return l >= x0 && l <= x1;
    })
    : (() => {
      const step = niceStep(x1 - x0, 8);
      const ticks: number[] = [];
      for (let x = Math.ceil(x0 / step) * step; x <= x1; x += step) ticks.push(x);
      return ticks;
    })();
  for (const x of xTicks) {
    out.push(
      `<text x="${sx(x)}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle">${format(x)}</text>`,
    );
  }
  out.push(
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${sy(yMin)}" y2="${
      sy(yMin)
    }" stroke="#333"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${sy(yMin)}" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 12}" text-anchor="middle">${
      escape(options.xLabel)
    }</text>`,
    `<text x="14" y="${MARGIN.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 14 ${
      MARGIN.top + plotH / 2
    })">${escape(options.yLabel)}</text>`,
  );
  if (options.limit) {
    const y = sy(options.limit.y);
    out.push(
      `<line x1="${MARGIN.left}" x2="${
        WIDTH - MARGIN.right
      }" y1="${y}" y2="${y}" stroke="#999" stroke-dasharray="6 4"/>`,
      `<text x="${WIDTH - MARGIN.right - 4}" y="${y - 4}" text-anchor="end" fill="#666">${
        escape(options.limit.label)
      }</text>`,
    );
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    if (options.bars) {
      const width = Math.max(2, plotW / Math.max(1, s.points.length) * 0.7);
      for (const [x, y] of s.points) {
        out.push(
          `<rect x="${sx(x) - width / 2}" y="${sy(y)}" width="${width}" height="${
            sy(yMin) - sy(y)
          }" fill="${color}"/>`,
        );
      }
    } else {
      const path = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${path}"/>`);
    }
    out.push(
      `<rect x="${MARGIN.left + 10}" y="${MARGIN.top + 6 + i * 18}" width="12" height="12" fill="${color}"/>`,
      `<text x="${MARGIN.left + 28}" y="${MARGIN.top + 16 + i * 18}">${escape(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** The cumulative distribution of `samples`: (value, share of samples at or below it, in %). */
export function cdf(samples: number[]): [number, number][] {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted.map((value, i) => [value, ((i + 1) / sorted.length) * 100]);
}
