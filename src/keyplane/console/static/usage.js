// keyplane console: usage charts, drawn with the vendored uPlot (static/vendor/uplot).
//
// The server renders each chart's numbers as a JSON data block next to an empty element
// (<div data-usage-chart="ID">, <script type="application/json" id="ID">): the CSP allows
// no inline script, and a data block is data, not script. The page carries the same numbers
// as text and a table, so nothing is lost when this file or uPlot does not run.
//
// A chart is one bar per bucket, its outcomes stacked from VALID at the bottom up, in the
// colours console.css gives each outcome; times are UTC. The legend shows each outcome's
// total, and the hovered bucket's counts while the pointer is over the chart; clicking an
// outcome in it hides or shows that outcome (the others stack again without it).
"use strict";

(() => {
  const HEIGHT = 220;
  // Whole numbers only: a count axis never reads 0.5.
  const INCREMENTS = [];
  for (let power = 1; power <= 1e12; power *= 10) INCREMENTS.push(power, 2 * power, 5 * power);

  const pad = (n) => String(n).padStart(2, "0");

  function utc(seconds, granularity) {
    const at = new Date(seconds * 1000);
    const day = `${at.getUTCFullYear()}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())}`;
    return granularity === "day" ? day : `${day} ${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}`;
  }

  // Axis ticks in 24-hour UTC time, with the date where a day starts (uPlot's own ticks are
  // 12-hour, US-ordered dates).
  function tick(seconds, granularity) {
    const at = new Date(seconds * 1000);
    const date = `${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())}`;
    const midnight = at.getUTCHours() === 0 && at.getUTCMinutes() === 0;
    return granularity === "day" || midnight ? date : `${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}`;
  }

  function colour(outcome) {
    const css = getComputedStyle(document.documentElement);
    const own = css.getPropertyValue(`--outcome-${outcome.toLowerCase()}`).trim();
    return own || css.getPropertyValue("--outcome-other").trim() || "#1d2330";
  }

  // uPlot has no stacking of its own: each shown series' values become the top of its
  // segment (running sums, bottom up), and a band [series, the shown one below it] makes
  // uPlot's bars start that segment where the one below ends. A hidden series keeps its
  // raw counts; uPlot does not draw it.
  function stack(series, shown) {
    const sums = new Array(series.length ? series[0].counts.length : 0).fill(0);
    const tops = [];
    const bands = [];
    let below = null;
    series.forEach((s, i) => {
      if (!shown[i]) {
        tops.push(s.counts.slice());
        return;
      }
      tops.push(s.counts.map((n, j) => (sums[j] += n)));
      if (below !== null) bands.push({ series: [i + 1, below] });
      below = i + 1;
    });
    return { tops, bands };
  }

  function draw(element, chart) {
    const { times, step, granularity } = chart;
    const last = times[times.length - 1];
    const bars = uPlot.paths.bars({ size: [0.8, Infinity], align: 1 });
    const stacked = stack(chart.series, chart.series.map(() => true));
    const options = {
      width: Math.max(element.clientWidth, 200),
      height: HEIGHT,
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
      // A vertical line on the hovered bucket; no horizontal one (a height means nothing in a stack).
      cursor: { y: false, drag: { x: false, y: false }, points: { show: false } },
      scales: {
        // Each bar starts at its bucket and is one step wide: the last one ends at last + step.
        x: { time: true, range: () => [times[0], last + step] },
        y: { range: (u, min, max) => [0, uPlot.rangeNum(0, Math.max(max, 1), 0.1, true)[1]] },
      },
      axes: [
        { values: (u, splits) => splits.map((seconds) => tick(seconds, granularity)) },
        { incrs: INCREMENTS, values: (u, splits) => splits.map((n) => n.toLocaleString("en")) },
      ],
      bands: stacked.bands,
      series: [
        {
          label: "Time (UTC)",
          value: (u, seconds, _, index) => (index == null ? "total" : utc(seconds, granularity)),
        },
        ...chart.series.map((s) => ({
          label: s.outcome,
          fill: colour(s.outcome),
          stroke: colour(s.outcome),
          width: 0,
          paths: bars,
          points: { show: false },
          value: (u, _, __, index) => (index == null ? s.total : s.counts[index]).toLocaleString("en"),
        })),
      ],
      hooks: {
        setSeries: [
          (u) => {
            const again = stack(chart.series, chart.series.map((_, i) => u.series[i + 1].show));
            u.delBand(null);
            again.bands.forEach((band) => u.addBand(band));
            u.setData([times, ...again.tops]);
          },
        ],
      },
    };
    const plot = new uPlot(options, [times, ...stacked.tops], element);
    new ResizeObserver(() => {
      const width = Math.max(element.clientWidth, 200);
      if (width !== plot.width) plot.setSize({ width, height: HEIGHT });
    }).observe(element);
    element.dataset.drawn = "yes";
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (typeof uPlot === "undefined") return; // the text and the table stand in
    document.querySelectorAll("[data-usage-chart]").forEach((element) => {
      const block = document.getElementById(element.dataset.usageChart);
      if (block) draw(element, JSON.parse(block.textContent));
    });
  });
})();
