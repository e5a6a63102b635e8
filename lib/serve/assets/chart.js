// History charts of the ess dashboard, drawn as SVG in the element's own pixels (so text is
// never stretched). Rows are placed by their time, so a gap in the device's data stays a gap.

const SVG = "http://www.w3.org/2000/svg";

const SERIES = {
  pv: {
    a: { key: "generation", label: "Generated" },
    b: { key: "feed_in", label: "Fed in" },
  },
  load: {
    a: { key: "consumption", label: "Used" },
    b: { key: "purchase", label: "Bought" },
  },
  batt: {
    a: { key: "charge", label: "Charged" },
    b: { key: "discharge", label: "Discharged" },
    line: { key: "soc", label: "SOC" },
  },
};

/** The two bar series (and the optional line) of a graph device. */
export function seriesOf(device) {
  return SERIES[device];
}

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function num(value) {
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** A row's `time` (YYYYMMDDhhmmss) as a local Date, or undefined. */
function timeOf(row) {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})/.exec(String(row.time ?? ""));
  return m ? new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) : undefined;
}

function weekStart(d) {
  const monday = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  monday.setDate(monday.getDate() - ((monday.getDay() + 6) % 7));
  return monday;
}

/** How many slots the span has, which slot a time falls in, and the label of a slot. */
function layout(span, date) {
  if (span === "day") {
    return {
      slots: 96,
      slot: (t) => t.getHours() * 4 + Math.floor(t.getMinutes() / 15),
      label: (i) => (i % 24 === 0 ? `${String(i / 4).padStart(2, "0")}:00` : ""),
      name: (i) =>
        `${String(Math.floor(i / 4)).padStart(2, "0")}:${String((i % 4) * 15).padStart(2, "0")}`,
    };
  }
  if (span === "week") {
    const start = weekStart(date);
    const day = (i) => {
      const d = new Date(start);
      d.setDate(d.getDate() + i);
      return d;
    };
    return {
      slots: 7,
      slot: (t) =>
        Math.round((new Date(t.getFullYear(), t.getMonth(), t.getDate()) - start) / 864e5),
      label: (i) => day(i).toLocaleDateString([], { weekday: "short" }),
      name: (i) =>
        day(i).toLocaleDateString([], { weekday: "long", day: "numeric", month: "short" }),
    };
  }
  if (span === "month") {
    const days = new Date(date.getFullYear(), date.getMonth() + 1, 0).getDate();
    return {
      slots: days,
      slot: (t) => t.getDate() - 1,
      label: (i) => ([0, 7, 14, 21, 28].includes(i) ? String(i + 1) : ""),
      name: (i) =>
        new Date(date.getFullYear(), date.getMonth(), i + 1)
          .toLocaleDateString([], { day: "numeric", month: "long" }),
    };
  }
  return {
    slots: 12,
    slot: (t) => t.getMonth(),
    label: (i) => new Date(2000, i, 1).toLocaleDateString([], { month: "narrow" }),
    name: (i) =>
      new Date(date.getFullYear(), i, 1).toLocaleDateString([], { month: "long", year: "numeric" }),
  };
}

function wh(value) {
  return value >= 1000
    ? `${(value / 1000).toFixed(value >= 10000 ? 1 : 2)} kWh`
    : `${Math.round(value)} Wh`;
}

/** A round axis maximum at or above `max`: 1, 2 or 5 times a power of ten. */
function niceMax(max) {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const f of [1, 2, 5, 10]) if (f * p >= max) return f * p;
  return 10 * p;
}

/**
 * Draws one graph answer into `svg` and returns the period's totals as text. `onReadout` gets
 * a line about the slot under the pointer.
 */
export function drawChart(svg, answer, device, span, date, onReadout) {
  svg.textContent = "";
  const width = Math.max(280, svg.clientWidth || 800);
  const height = Math.max(160, svg.clientHeight || 260);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const series = SERIES[device];
  const rows = Array.isArray(answer?.loginfo) ? answer.loginfo : [];
  const { slots, slot, label, name } = layout(span, date);
  const a = new Array(slots).fill(null);
  const b = new Array(slots).fill(null);
  const line = new Array(slots).fill(null);
  for (const row of rows) {
    const t = timeOf(row);
    if (!t) continue;
    const i = slot(t);
    if (!(i >= 0 && i < slots)) continue;
    a[i] = (a[i] ?? 0) + num(row[series.a.key]);
    b[i] = (b[i] ?? 0) + num(row[series.b.key]);
    if (series.line && row[series.line.key] !== undefined) line[i] = num(row[series.line.key]);
  }
  const left = 52;
  const right = 10;
  const top = 10;
  const bottom = 24;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const max = niceMax(Math.max(0, ...a.map((v) => v ?? 0), ...b.map((v) => v ?? 0)));
  const y = (v) => top + plotH - (v / max) * plotH;
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    svg.append(el("line", { class: "gridline", x1: left, x2: width - right, y1: y(v), y2: y(v) }));
    svg.append(el("text", { x: left - 8, y: y(v) + 4, "text-anchor": "end" }, wh(v)));
  }
  const w = plotW / slots;
  for (let i = 0; i < slots; i++) {
    const x = left + i * w;
    const text = label(i);
    if (text) {
      svg.append(
        el("text", {
          x: x + (span === "day" ? 0 : w / 2),
          y: height - 6,
          "text-anchor": span === "day" ? "start" : "middle",
        }, text),
      );
    }
  }
  if (rows.length === 0) {
    svg.append(
      el("text", {
        class: "empty",
        x: left + plotW / 2,
        y: top + plotH / 2,
        "text-anchor": "middle",
      }, "No data for this period"),
    );
    onReadout("");
    return "";
  }
  const hover = el("rect", {
    class: "hover",
    x: 0,
    y: top,
    width: w,
    height: plotH,
    visibility: "hidden",
  });
  svg.append(hover);
  const gap = Math.min(2, w * 0.15);
  for (let i = 0; i < slots; i++) {
    const x = left + i * w;
    if (a[i]) {
      svg.append(
        el("rect", {
          class: "a",
          x: x + gap / 2,
          y: y(a[i]),
          width: Math.max(1, w - gap),
          height: top + plotH - y(a[i]),
          rx: Math.min(3, w / 4),
        }),
      );
    }
    if (b[i]) {
      const bw = Math.max(1, (w - gap) * 0.5);
      svg.append(
        el("rect", {
          class: "b",
          x: x + (w - bw) / 2,
          y: y(b[i]),
          width: bw,
          height: top + plotH - y(b[i]),
          rx: Math.min(2, w / 6),
        }),
      );
    }
  }
  if (series.line && line.some((v) => v !== null)) {
    const points = line.map((
      v,
      i,
    ) => (v === null ? null : `${left + i * w + w / 2},${top + plotH - (v / 100) * plotH}`)).filter(
      Boolean,
    );
    svg.append(el("polyline", { class: "soc", points: points.join(" ") }));
  }
  svg.onpointermove = (e) => {
    const box = svg.getBoundingClientRect();
    const i = Math.floor(((e.clientX - box.left) * (width / box.width) - left) / w);
    if (i < 0 || i >= slots) return;
    hover.setAttribute("x", String(left + i * w));
    hover.setAttribute("visibility", "visible");
    const parts = [`${series.a.label} ${wh(a[i] ?? 0)}`, `${series.b.label} ${wh(b[i] ?? 0)}`];
    if (series.line && line[i] !== null) parts.push(`SOC ${Math.round(line[i])} %`);
    onReadout(`${name(i)} · ${parts.join(" · ")}`);
  };
  svg.onpointerleave = () => {
    hover.setAttribute("visibility", "hidden");
    onReadout("");
  };
  const sum = (list) => list.reduce((t, v) => t + (v ?? 0), 0);
  return `${series.a.label} ${wh(sum(a))} · ${series.b.label} ${wh(sum(b))}`;
}
