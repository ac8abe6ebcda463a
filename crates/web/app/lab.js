// The laboratory: the laboratory's work queue and one order's work (schedule, collect, record
// results, upload files); a doctor's orders (for a patient, and their own), read, released or
// cancelled; a patient's released results; and an ECG's automatic analysis, drawn with the
// beats it detected. The analysis is decision support, never a diagnosis, and says so.

import { ApiError, authorized, downloadFile, get, post, query } from "./api.js";
import { action, clinicTime, facts, field, form, h, notice, refill, section, table } from "./dom.js";

const STATUSES = ["ordered", "scheduled", "collected", "resulted", "released", "cancelled"];
/** The statuses the laboratory still works on (the queue's default) and a doctor may cancel in. */
const OPEN = ["ordered", "scheduled", "collected"];
const ECG_RECORDINGS = ["ecg_header", "ecg_csv"];
const FILE_KINDS = {
  pdf: "PDF report",
  image: "image",
  ecg_header: "ECG recording (WFDB header)",
  ecg_signal: "ECG signal (WFDB)",
  ecg_csv: "ECG recording (CSV)",
};
const RHYTHMS = {
  normal_sinus: "Normal sinus rhythm",
  sinus_bradycardia: "Sinus bradycardia",
  sinus_tachycardia: "Sinus tachycardia",
  atrial_fibrillation_suspected: "Atrial fibrillation suspected",
  irregular_other: "Irregular rhythm (other)",
  undetermined: "Undetermined (signal too poor)",
};
/** How often a pending ECG analysis is asked for again. */
const ECG_POLL_MS = 2000;

/** A refusal raised here, before asking the server, shown as the server's 422s are. */
function invalid(title, errors) {
  return new ApiError(422, { title, errors });
}

/** `error` with the messages of each field joined (several files may each be refused). */
function joinedFieldErrors(error) {
  if (!(error instanceof ApiError) || !Array.isArray(error.problem.errors)) return error;
  const byField = new Map();
  for (const e of error.problem.errors) byField.set(e.field, [...(byField.get(e.field) ?? []), e.message]);
  const errors = [...byField].map(([f, messages]) => ({ field: f, message: messages.join("; ") }));
  return new ApiError(error.status, { ...error.problem, errors });
}

// Small views -----------------------------------------------------------------------------

const orderHref = (o) => `#/lab-orders/${o.id}`;
const statusText = (s) => h("span", { class: `lab-status lab-status-${s}` }, s);
const priorityText = (p) => (p === "urgent" ? h("strong", { class: "urgent" }, "urgent") : "routine");

/** A range as people read it: `12–17.5`, critical limits after. */
export function rangeText(r) {
  if (!r) return "";
  let normal = "";
  if (r.low != null && r.high != null) normal = `${r.low}–${r.high}`;
  else if (r.low != null) normal = `≥ ${r.low}`;
  else if (r.high != null) normal = `≤ ${r.high}`;
  const critical = [r.critical_low != null ? `< ${r.critical_low}` : null, r.critical_high != null ? `> ${r.critical_high}` : null].filter(Boolean);
  return [normal, critical.length ? `critical ${critical.join(" or ")}` : ""].filter(Boolean).join("; ");
}

function flagText(flag) {
  const words = { normal: "normal", low: "low", high: "high", critical: "CRITICAL" };
  return h("span", { class: `flag flag-${flag}` }, words[flag] ?? flag);
}

/** What an order's results hold out of range: "1 critical, 2 high", or "". */
function flagSummary(o) {
  const counts = {};
  for (const r of o.results) if (r.flag !== "normal") counts[r.flag] = (counts[r.flag] ?? 0) + 1;
  const parts = ["critical", "high", "low"].filter((f) => counts[f]).map((f) => `${counts[f]} ${f}`);
  if (!parts.length) return o.results.length ? "none out of range" : "";
  return h("span", { class: counts.critical ? "flag flag-critical" : "flag flag-high" }, parts.join(", "));
}

/** Marks each row of a table (from dom.js `table`) with the classes `classes(item)` gives. */
function markRows(element, items, classes) {
  if (element.tagName !== "TABLE") return element;
  element.querySelectorAll("tbody > tr").forEach((row, i) => {
    for (const c of classes(items[i])) row.classList.add(c);
  });
  return element;
}

const urgentRow = (o) => (o.priority === "urgent" ? ["urgent-row"] : []);

/** The laboratory's and a doctor's list of orders; `columns` picks the patient's columns. */
function orderTable(items, { patient = true, empty = "No lab orders." } = {}) {
  const columns = [
    ["Ordered", (o) => clinicTime(o.created_at)],
    ...(patient
      ? [
          ["Record", (o) => o.patient.mrn],
          ["Name", (o) => o.patient.full_name],
          ["Born", (o) => o.patient.date_of_birth],
          ["Sex", (o) => o.patient.sex],
        ]
      : []),
    ["Tests", (o) => o.tests.join(", ")],
    ["Priority", (o) => priorityText(o.priority)],
    ["Clinical question", (o) => h("span", { class: "question" }, o.clinical_question)],
    ["Status", (o) => statusText(o.status)],
    ["Flags", flagSummary],
    ["Order", (o) => h("a", { href: orderHref(o), "aria-label": `Open the order of ${o.patient.full_name}, ${clinicTime(o.created_at)}` }, "Open")],
  ];
  return markRows(table(columns, items, empty), items, urgentRow);
}

/**
 * A paged list of orders at `params`, with a button for the next pages: `{ element, items }`
 * where `element` refills itself.
 */
async function pagedOrders(params, options) {
  const box = h("div", { "aria-live": "polite" });
  const items = [];
  const load = async (cursor) => {
    const page = await get(`/lab-orders${query({ ...params, cursor, limit: 50 })}`);
    items.push(...page.items);
    refill(box, orderTable(items, options), page.next_cursor ? action("Show more orders", () => load(page.next_cursor), { class: "secondary" }) : null);
  };
  await load();
  return box;
}

// The laboratory's queue ------------------------------------------------------------------

/** The status the laboratory's queue was last filtered by (kept across redraws). */
let queueStatus = "";

/** The laboratory's home: the orders to work, urgent ones marked, filtered by status. */
export async function labQueuePage(me) {
  const queue = () => pagedOrders({ status: queueStatus }, { empty: queueStatus ? `No ${queueStatus} orders.` : "No open orders: the queue is empty." });
  let list = await queue();
  const filter = form("Filter the queue", "Show", [field("Status", "status", { value: queueStatus }, [["", "Open (ordered, scheduled, collected)"], ...STATUSES])], async (data) => {
    queueStatus = String(data.get("status") ?? "");
    const again = await queue();
    list.replaceWith(again);
    list = again;
  });
  filter.classList.add("inline");
  return [
    h("h1", {}, "Laboratory home"),
    h("p", {}, `Signed in as ${me.full_name} (${me.username}). Open an order to schedule it, collect it, record its results and upload its files.`),
    section("Work queue", filter, list),
  ];
}

// The laboratory's work on one order --------------------------------------------------------

/** `YYYY-MM-DDTHH:MM` in this browser's time, as a datetime-local input holds it. */
function localInput(rfc3339) {
  if (!rfc3339) return undefined;
  const d = new Date(rfc3339);
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

function scheduleForm(order, done) {
  const label = order.status === "scheduled" ? "Move the appointment" : "Schedule the collection";
  const element = form(label, order.status === "scheduled" ? "Move" : "Schedule", [field("When (your local time)", "scheduled_for", { type: "datetime-local", required: true, value: localInput(order.scheduled_for) })], async (data) => {
    const raw = String(data.get("scheduled_for") ?? "");
    const at = new Date(raw);
    if (!raw || Number.isNaN(at.getTime())) throw invalid("Choose when.", [{ field: "scheduled_for", message: "choose a date and time" }]);
    const saved = await post(`/lab-orders/${order.id}/schedule`, { scheduled_for: at.toISOString() });
    await done();
    notice(`Scheduled for ${clinicTime(saved.scheduled_for)}.`);
  });
  element.classList.add("inline");
  return element;
}

/** The catalogue's tests of `order`, in its order; a test no longer listed has no analytes. */
function orderedTests(order, catalogue) {
  return order.tests.map((code) => catalogue.find((t) => t.code === code) ?? { code, name: code, kind: "other", analytes: [] });
}

function analyteLabel(a) {
  const range = rangeText(a.range);
  return `${a.name}${a.unit ? ` (${a.unit})` : ""}${range ? `, reference ${range}` : ""}`;
}

/** The results form: one number per analyte of each ordered test, and findings. */
function resultsForm(order, catalogue, done) {
  const tests = orderedTests(order, catalogue);
  const measured = tests.filter((t) => t.analytes.length);
  const inputName = (t, a) => `${t.code}.${a.code}`;
  return form("Record the results", "Record the results", [
    measured.map((t) => h("fieldset", { class: "analytes" }, h("legend", {}, `${t.name} (${t.code})`), t.analytes.map((a) => field(analyteLabel(a), inputName(t, a), { type: "number", step: "any", inputmode: "decimal", autocomplete: "off" })))),
    tests.filter((t) => !t.analytes.length).length ? h("p", { class: "meta" }, `Without values: ${tests.filter((t) => !t.analytes.length).map((t) => t.name).join(", ")}. Give findings, or upload the files.`) : null,
    field("Findings", "findings", { multiline: true }),
  ], async (data, element) => {
    const values = [];
    const wrong = [];
    for (const t of measured) {
      for (const a of t.analytes) {
        const name = inputName(t, a);
        const input = element.querySelector(`[name="${CSS.escape(name)}"]`);
        if (input?.validity.badInput) {
          wrong.push({ field: name, message: "must be a number" });
          continue;
        }
        const raw = String(data.get(name) ?? "").trim();
        if (raw !== "") values.push({ test: t.code, analyte: a.code, value: Number(raw) });
      }
    }
    if (wrong.length) throw invalid("Some values are not numbers.", wrong);
    const findings = String(data.get("findings") ?? "").trim();
    try {
      await post(`/lab-orders/${order.id}/results`, { values, findings: findings || undefined });
    } catch (error) {
      // `values[2].value` is refused: say it next to the input it came from.
      if (error instanceof ApiError && Array.isArray(error.problem.errors)) {
        const errors = error.problem.errors.map((e) => {
          const at = /^values\[(\d+)\]/.exec(e.field ?? "");
          const v = at ? values[Number(at[1])] : null;
          return v ? { ...e, field: `${v.test}.${v.analyte}` } : e;
        });
        throw new ApiError(error.status, { ...error.problem, errors });
      }
      throw error;
    }
    await done();
    notice("The results are recorded; the ordering doctor is told.");
  });
}

/** The upload form: several files, and the sampling rate a CSV without a time column needs. */
function uploadForm(order, done) {
  return form("Upload files", "Upload", [
    field("PDF, PNG or JPEG files, or an ECG: a WFDB pair (.hea with its .dat) or a .csv", "file", { type: "file", multiple: true, accept: ".pdf,.png,.jpg,.jpeg,.hea,.dat,.csv" }),
    field("Sampling rate of a CSV recording without a time column (Hz, 100 to 1000)", "sampling_rate", { type: "number", min: "100", max: "1000", step: "any" }),
  ], async (data, element) => {
    const files = data.getAll("file").filter((f) => f instanceof File && f.name !== "");
    if (!files.length) throw invalid("Choose at least one file.", [{ field: "file", message: "choose at least one file" }]);
    const body = new FormData();
    for (const f of files) body.append("file", f, f.name);
    const rate = String(data.get("sampling_rate") ?? "").trim();
    if (rate) body.append("sampling_rate", rate);
    let stored;
    try {
      stored = await (await authorized("POST", `/lab-orders/${order.id}/files`, body)).json();
    } catch (error) {
      throw joinedFieldErrors(error);
    }
    element.reset();
    await done();
    notice(`Uploaded ${stored.map((f) => f.name).join(", ")}.`);
  });
}

/** What the laboratory may do to the order now. */
function labWork(order, catalogue, done) {
  const parts = [];
  if (["ordered", "scheduled"].includes(order.status)) {
    parts.push(
      scheduleForm(order, done),
      h("div", { class: "controls" }, action("Collected", async () => {
        await post(`/lab-orders/${order.id}/collect`);
        await done();
        notice("The order is collected.");
      }, { "aria-label": "Mark the sample collected" })),
    );
  }
  if (order.status === "collected") parts.push(h("h3", {}, "Results"), resultsForm(order, catalogue, done));
  if (["collected", "resulted"].includes(order.status)) parts.push(h("h3", {}, "Files"), uploadForm(order, done));
  if (order.status === "resulted") parts.push(h("p", { class: "meta" }, "The results are recorded: the ordering doctor releases them to the patient."));
  return parts.length ? section("Work on this order", parts) : null;
}

// Reading an order --------------------------------------------------------------------------

function orderFacts(order) {
  const p = order.patient;
  return facts([
    ["Patient", `${p.full_name}, record ${p.mrn}`],
    ["Born", p.date_of_birth],
    ["Sex", p.sex],
    ["Ordered by", order.ordered_by.full_name ?? "a former user"],
    ["Ordered", clinicTime(order.created_at)],
    ["Tests", order.tests.join(", ")],
    ["Priority", priorityText(order.priority)],
    ["Clinical question", h("span", { class: "body" }, order.clinical_question)],
    ["Status", statusText(order.status)],
    ["Scheduled for", clinicTime(order.scheduled_for)],
    ["Collected", clinicTime(order.collected_at)],
    ["Resulted", clinicTime(order.resulted_at)],
    ["Released", order.released_at ? `${clinicTime(order.released_at)}${order.released_by ? "" : " (automatically, after the release delay)"}` : null],
    ["Cancelled", clinicTime(order.cancelled_at)],
  ]);
}

function resultsTable(order) {
  const rows = order.results;
  const shown = table(
    [
      ["Test", (r) => r.test],
      ["Analyte", (r) => r.name],
      ["Value", (r) => h("span", { class: "value" }, `${r.value}${r.unit ? ` ${r.unit}` : ""}`)],
      ["Reference", (r) => rangeText(r.range)],
      ["Flag", (r) => flagText(r.flag)],
    ],
    rows,
    "No values were recorded.",
  );
  return markRows(shown, rows, (r) => (r.flag === "normal" ? [] : [`flag-row-${r.flag}`]));
}

function resultsView(order) {
  if (!["resulted", "released"].includes(order.status)) return h("p", { class: "empty" }, "No results yet.");
  const critical = order.results.some((r) => r.flag === "critical");
  return [
    critical ? h("p", { class: "critical-alert", role: "alert" }, "A value is beyond a critical limit.") : null,
    resultsTable(order),
    order.findings ? [h("h3", {}, "Findings"), h("p", { class: "body findings" }, order.findings)] : null,
  ];
}

/** Downloads one of the order's files. */
async function download(order, file) {
  await downloadFile(`/lab-orders/${order.id}/files/${file.id}`, file.name);
  notice(`Downloaded ${file.name}.`);
}

function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function filesView(order) {
  return table(
    [
      ["Name", (f) => f.name],
      ["Kind", (f) => `${FILE_KINDS[f.kind] ?? f.kind}${f.sampling_rate_hz ? `, ${f.sampling_rate_hz} Hz` : ""}`],
      ["Size", (f) => sizeText(f.size)],
      ["Uploaded", (f) => clinicTime(f.uploaded_at)],
      ["Download", (f) => action("Download", () => download(order, f), { class: "secondary", "aria-label": `Download ${f.name}` })],
    ],
    order.files ?? [],
    "No files.",
  );
}

// The ECG -----------------------------------------------------------------------------------

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element (`h` makes HTML ones); attributes only, never a style. */
function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  element.append(...children);
  return element;
}

let traceIds = 0;

/**
 * The trace (the first seconds of the lead) on ECG paper, 0.2 s squares, with each beat the
 * analysis detected in it marked; `analysis.beats` are sample indices of the whole recording.
 */
export function ecgTrace(trace, analysis) {
  const samples = trace.samples;
  const n = samples.length;
  if (n < 2) return null;
  const rate = trace.sampling_rate_hz;
  const seconds = n / rate;
  const width = 1000;
  const height = 240;
  const pad = 12;
  let low = Infinity;
  let high = -Infinity;
  for (const v of samples) {
    if (v < low) low = v;
    if (v > high) high = v;
  }
  if (high - low < 1e-6) {
    high += 0.5;
    low -= 0.5;
  }
  const x = (i) => (i / (n - 1)) * width;
  const y = (v) => pad + (1 - (v - low) / (high - low)) * (height - 2 * pad);

  const grid = svg("g", { class: "ecg-grid" });
  for (let k = 0; k * 0.2 <= seconds + 1e-9; k += 1) {
    const gx = x(Math.min(k * 0.2 * rate, n - 1)).toFixed(1);
    grid.append(svg("line", { x1: gx, x2: gx, y1: 0, y2: height, class: k % 5 === 0 ? "major" : "minor" }));
  }
  const points = [];
  for (let i = 0; i < n; i += 1) points.push(`${x(i).toFixed(1)},${y(samples[i]).toFixed(1)}`);
  const line = svg("polyline", { class: "ecg-line", points: points.join(" ") });

  const scale = rate / analysis.sampling_rate_hz;
  const shown = analysis.beats.map((b) => Math.round(b * scale)).filter((i) => i >= 0 && i < n);
  const beats = svg("g", { class: "ecg-beats" });
  for (const i of shown) {
    const bx = x(i).toFixed(1);
    beats.append(
      svg("line", { class: "ecg-beat-line", x1: bx, x2: bx, y1: 0, y2: height }),
      svg("circle", { class: "ecg-beat", cx: bx, cy: y(samples[i]).toFixed(1), r: 5, "data-sample": i }),
    );
  }
  traceIds += 1;
  const titleId = `ecg-title-${traceIds}`;
  const caption = `The first ${seconds.toFixed(1)} seconds of the recording, with the ${shown.length} beats detected in them marked.`;
  const drawing = svg(
    "svg",
    { class: "ecg-trace", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": titleId },
    svg("title", { id: titleId }, caption),
    svg("rect", { class: "ecg-paper", x: 0, y: 0, width, height }),
    grid,
    line,
    beats,
  );
  return h("figure", { class: "ecg-figure" }, drawing, h("figcaption", { class: "meta" }, `${caption} Squares are 0.2 s; dots mark the detected beats.`));
}

function rrText(rr) {
  if (!rr) return "too few beats";
  const ms = (v) => `${Math.round(v)} ms`;
  return `mean ${ms(rr.mean_ms)}, SDNN ${ms(rr.sdnn_ms)}, RMSSD ${ms(rr.rmssd_ms)}, pNN50 ${rr.pnn50.toFixed(1)} %`;
}

function qualityText(q) {
  const word = q >= 0.8 ? "good" : q >= 0.5 ? "fair" : "poor";
  return `${Math.round(q * 100)} % (${word})`;
}

function ecgAnalysed(ecg) {
  const a = ecg.analysis;
  const af = a.rhythm === "atrial_fibrillation_suspected";
  return [
    facts([
      ["Rhythm", h("strong", { class: af ? "flag flag-critical" : "rhythm" }, RHYTHMS[a.rhythm] ?? a.rhythm)],
      ["Heart rate", a.heart_rate_bpm != null ? `${Math.round(a.heart_rate_bpm)} bpm` : "not measurable"],
      ["RR intervals", rrText(a.rr)],
      ["Signal quality", qualityText(a.signal_quality)],
      ["Beats detected", String(a.beats.length)],
      ["Premature beats (estimate)", String(a.ectopic_beats)],
      ["Recording", `${a.duration_secs.toFixed(1)} s at ${a.sampling_rate_hz} Hz`],
      ["Analysed", `${clinicTime(ecg.analyzed_at)} by ${a.algorithm_version}`],
    ]),
    ecg.trace ? ecgTrace(ecg.trace, a) : null,
  ];
}

/** Fills `box` with the order's ECG analysis; while pending, asks again until it is done. */
async function fillEcg(box, orderId, waited = 0) {
  // A page redrawn (or left) drops its box: stop asking then. A box not shown yet is waited for.
  if (!box.isConnected && waited > 0) {
    if (box.dataset.shown || waited > 5) return;
  } else if (box.isConnected) {
    box.dataset.shown = "yes";
  }
  let ecg;
  try {
    ecg = await get(`/lab-orders/${orderId}/ecg`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      refill(box, h("p", { class: "empty" }, "No ECG recording has been uploaded yet."));
      return;
    }
    refill(box, h("p", { class: "error" }, `The ECG analysis could not be read: ${error.message}`));
    return;
  }
  const disclaimer = h("p", { class: "disclaimer", role: "note" }, ecg.disclaimer);
  box.dataset.ecg = ecg.status;
  if (ecg.status === "pending") {
    refill(box, h("p", { class: "pending" }, h("span", { class: "spinner", "aria-hidden": "true" }), "The recording is being analysed. This updates by itself."));
    setTimeout(() => fillEcg(box, orderId, waited + 1), ECG_POLL_MS);
    return;
  }
  if (ecg.status === "failed") {
    refill(box, disclaimer, h("p", { class: "error" }, `The recording could not be analysed: ${ecg.failure ?? "unknown reason"}.`));
    return;
  }
  refill(box, disclaimer, ecgAnalysed(ecg));
}

/** The order's ECG analysis, as it stands; it updates itself while pending. */
async function ecgBox(order) {
  const box = h("div", { class: "ecg", "aria-live": "polite" });
  await fillEcg(box, order.id);
  return box;
}

function hasEcg(order) {
  return order.tests.includes("ecg") || (order.files ?? []).some((f) => ECG_RECORDINGS.includes(f.kind));
}

// A doctor's actions and pages ------------------------------------------------------------

function doctorActions(me, order, done) {
  if (me.role !== "doctor") return [];
  const actions = [];
  if (order.status === "resulted") {
    actions.push(action("Release to the patient", async () => {
      await post(`/lab-orders/${order.id}/release`);
      await done();
      notice("The results are released to the patient.");
    }));
  }
  if (OPEN.includes(order.status) && order.ordered_by.id === me.id) {
    actions.push(action("Cancel the order", async () => {
      await post(`/lab-orders/${order.id}/cancel`);
      await done();
      notice("The order is cancelled.");
    }, { class: "secondary" }));
  }
  return actions;
}

/** One order as `me` may see it, with what their role may do to it now. */
export async function labOrderPage(me, id, done) {
  const order = await get(`/lab-orders/${id}`);
  const catalogue = me.role === "laboratory" && order.status === "collected" ? await get("/lab-tests") : [];
  const ecg = hasEcg(order) ? section("ECG analysis", await ecgBox(order)) : null;
  const back = { laboratory: ["#/", "Back to the work queue"], doctor: ["#/lab-orders", "Back to my lab orders"], patient: ["#/results", "Back to my results"] }[me.role];
  return [
    h("h1", {}, `Lab order for ${order.patient.full_name}`),
    back ? h("p", {}, h("a", { href: back[0] }, back[1])) : null,
    orderFacts(order),
    h("div", { class: "controls" }, doctorActions(me, order, done)),
    me.role === "laboratory" ? labWork(order, catalogue, done) : null,
    section("Results", resultsView(order)),
    section("Files", filesView(order)),
    ecg,
  ];
}

/** The form a doctor orders tests with, for `patientId`. */
function orderForm(patientId, catalogue) {
  const tests = h(
    "fieldset",
    { class: "tests" },
    h("legend", {}, "Tests"),
    catalogue.map((t) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "tests", value: t.code, "aria-describedby": "error-tests" }), `${t.name} (${t.code})`)),
    h("span", { class: "field-error", id: "error-tests", "data-error-for": "tests" }),
  );
  const element = form("Order lab tests", "Order the tests", [
    tests,
    field("Priority", "priority", { value: "routine" }, ["routine", "urgent"]),
    field("Clinical question", "clinical_question", { multiline: true, required: true }),
  ], async (data) => {
    const chosen = data.getAll("tests").map(String);
    if (!chosen.length) throw invalid("Choose at least one test.", [{ field: "tests", message: "choose at least one test" }]);
    const order = await post("/lab-orders", {
      patient_id: patientId,
      tests: chosen,
      priority: String(data.get("priority")),
      clinical_question: String(data.get("clinical_question") ?? "").trim(),
    });
    notice(`Tests ordered: ${order.tests.join(", ")}.`);
    location.hash = orderHref(order);
  });
  return h("details", {}, h("summary", {}, "Order lab tests…"), element);
}

/**
 * The patient's lab orders and the form to order more, for a doctor on the patient's page; null
 * when the doctor may not see them (not on the care team).
 */
export async function patientLabSection(me, patientId) {
  if (me.role !== "doctor") return null;
  let list;
  let catalogue;
  try {
    [list, catalogue] = await Promise.all([pagedOrders({ patient_id: patientId }, { patient: false, empty: "No lab orders for this patient." }), get("/lab-tests")]);
  } catch (error) {
    if (error instanceof ApiError && [403, 404].includes(error.status)) return null;
    throw error;
  }
  return section("Lab orders", list, orderForm(patientId, catalogue));
}

/** A doctor's own orders, newest first, filtered by status. */
export async function myLabOrdersPage() {
  let list = await pagedOrders({}, { empty: "You have ordered no lab tests." });
  const filter = form("Filter my orders", "Show", [field("Status", "status", { value: "" }, [["", "Any status"], ...STATUSES])], async (data) => {
    const status = String(data.get("status") ?? "");
    const again = await pagedOrders({ status }, { empty: status ? `None of your orders is ${status}.` : "You have ordered no lab tests." });
    list.replaceWith(again);
    list = again;
  });
  filter.classList.add("inline");
  return [h("h1", {}, "My lab orders"), h("p", {}, "Order tests from a patient's page."), section("Orders I placed", filter, list)];
}

// The patient's results ---------------------------------------------------------------------

/** One released order as its patient reads it: values, findings, files and the ECG. */
async function releasedOrder(summary) {
  const order = await get(`/lab-orders/${summary.id}`);
  const ecg = hasEcg(order) ? [h("h3", {}, "ECG analysis"), await ecgBox(order)] : null;
  return h(
    "article",
    { class: "lab-result", "aria-label": `Results of ${clinicTime(order.created_at)}` },
    h("h2", {}, `${order.tests.join(", ")}, released ${clinicTime(order.released_at)}`),
    h("p", { class: "meta" }, `Ordered by ${order.ordered_by.full_name ?? "a former doctor"} on ${clinicTime(order.created_at)}. `, h("a", { href: orderHref(order) }, "Open")),
    resultsView(order),
    h("h3", {}, "Files"),
    filesView(order),
    ecg,
  );
}

/** A patient's released results, newest first, ten at a time. */
export async function myResultsPage() {
  const box = h("div", {});
  const load = async (cursor) => {
    const page = await get(`/lab-orders${query({ limit: 10, cursor })}`);
    const orders = await Promise.all(page.items.map(releasedOrder));
    box.querySelector("button.more")?.remove();
    box.append(...orders);
    if (page.next_cursor) box.append(action("Show older results", () => load(page.next_cursor), { class: "secondary more" }));
    if (!box.childNodes.length) box.append(h("p", { class: "empty" }, "No results have been released to you yet."));
  };
  await load();
  return [h("h1", {}, "My results"), h("p", {}, "Your doctor releases each result to you once they have read it."), box];
}
