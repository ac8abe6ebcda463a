// Prescriptions: on a patient's page, their prescriptions and, for a doctor of the care team,
// the form to prescribe (a medication matching a recorded allergy is refused with each match,
// and may be prescribed with a reason), to replace, complete or stop one; the patient's own
// list; and one prescription as a page to print.

import { ApiError, get, getHtml, post, query } from "./api.js";
import { action, clinicTime, field, form, formBody, h, notice, section, table } from "./dom.js";

const ROUTES = ["oral", "sublingual", "buccal", "intravenous", "intramuscular", "subcutaneous", "topical", "transdermal", "inhaled", "nasal", "ophthalmic", "otic", "rectal", "vaginal"];

export const prescriptionHref = (p) => `#/prescriptions/${p.id}`;

/** What is prescribed, in one line: `Amoxicillin 500 mg, oral, three times a day, 7 days`. */
function summary(p) {
  const course = p.duration_days ? `${p.duration_days} day${p.duration_days === 1 ? "" : "s"}` : "until stopped";
  return `${p.medication} ${p.dose}, ${p.route}, ${p.frequency}, ${course}`;
}

/** Where it stands, and why when it ended. */
function status(p) {
  const label = h("span", { class: `rx-status rx-status-${p.status}` }, p.status);
  if (p.replaced_by) return [label, " (replaced)"];
  if (p.stop_reason) return [label, ` (${p.stop_reason})`];
  if (p.status === "active" && p.expires_at) return [label, ` until ${clinicTime(p.expires_at)}`];
  return label;
}

/** The form that writes a prescription for the patient; `replacing` fills it in from one it replaces. */
function prescribeForm(patientId, done, replacing = null) {
  const from = replacing ?? { route: "oral", refills: 0 };
  const element = form(replacing ? "Replace this prescription" : "Prescribe", replacing ? "Write the replacement" : "Write the prescription", [
    field("Medication", "medication", { value: from.medication, required: true, autocomplete: "off" }),
    h("div", { class: "row" },
      field("Dose", "dose", { value: from.dose, required: true }),
      field("Route", "route", { value: from.route }, ROUTES),
      field("Frequency", "frequency", { value: from.frequency, required: true }),
    ),
    h("div", { class: "row" },
      field("Days (empty: until stopped)", "duration_days", { value: from.duration_days, type: "number", min: "1", max: "365", inputmode: "numeric" }),
      field("Quantity", "quantity", { value: from.quantity, type: "number", min: "1", max: "10000", inputmode: "numeric" }),
      field("Refills", "refills", { value: from.refills, type: "number", min: "0", max: "12", inputmode: "numeric", required: true }),
    ),
    field("Instructions", "instructions", { value: from.instructions, multiline: true, required: true }),
    field("Reason to prescribe despite a recorded allergy (only if one matches)", "override_reason", { multiline: true }),
  ], async (data) => {
    const body = formBody(data);
    for (const key of ["duration_days", "quantity", "refills"]) {
      if (body[key] !== undefined) body[key] = Number(body[key]);
    }
    if (replacing) body.replaces = replacing.id;
    const written = await post(`/patients/${patientId}/prescriptions`, body);
    notice(`Prescribed: ${summary(written)}.${written.allergy_override ? " The allergy override is recorded." : ""}`);
    await done();
  });
  return h("details", {}, h("summary", {}, replacing ? "Replace…" : "Prescribe…"), element);
}

function stopForm(p, done) {
  const element = form(`Stop ${p.medication}`, "Stop it", [field("Why", "reason", { required: true })], async (data) => {
    await post(`/prescriptions/${p.id}/stop`, formBody(data));
    notice(`${p.medication} stopped.`);
    await done();
  });
  return h("details", {}, h("summary", {}, "Stop…"), element);
}

/** What a doctor of the care team may do with an active prescription. */
function controls(patientId, p, done) {
  const open = h("a", { href: prescriptionHref(p) }, "Open to print");
  if (p.status !== "active") return open;
  return h(
    "div",
    { class: "controls" },
    open,
    action("Complete", async () => {
      await post(`/prescriptions/${p.id}/complete`);
      notice(`${p.medication} completed.`);
      await done();
    }, { class: "secondary", "aria-label": `Complete ${p.medication}` }),
    stopForm(p, done),
    prescribeForm(patientId, done, p),
  );
}

function prescriptionTable(patientId, items, writer, done) {
  return table(
    [
      ["Prescribed", (p) => [h("strong", {}, p.medication), ` ${p.dose}, ${p.route}, ${p.frequency}`, p.allergy_override ? h("p", { class: "rx-override" }, `Allergy override: ${p.allergy_override.reason}`) : null]],
      ["Status", status],
      ["Written", (p) => `${clinicTime(p.created_at)} by ${p.prescribed_by.full_name ?? "a former doctor"}`],
      ["", (p) => (writer ? controls(patientId, p, done) : h("a", { href: prescriptionHref(p) }, "Open to print"))],
    ],
    items,
    "No prescriptions.",
  );
}

/**
 * The patient's prescriptions for whoever may read them (the care team, a doctor under
 * emergency access, the patient), with the forms to write and end them for a doctor; null
 * when the caller may not see them.
 */
export async function patientPrescriptionsSection(me, patientId, done) {
  if (!["doctor", "patient"].includes(me.role)) return null;
  let page;
  try {
    page = await get(`/patients/${patientId}/prescriptions${query({ limit: 100 })}`);
  } catch (error) {
    if (error instanceof ApiError && [403, 404].includes(error.status)) return null;
    throw error;
  }
  const writer = me.role === "doctor";
  return section("Prescriptions", prescriptionTable(patientId, page.items, writer, done), writer ? prescribeForm(patientId, done) : null);
}

/** The patient's own prescriptions. */
export async function myPrescriptionsPage(me, done) {
  let record;
  try {
    record = await get("/users/me/patient");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return [h("h1", {}, "My prescriptions"), h("p", {}, "No patient record is linked to your account yet.")];
    throw error;
  }
  return [h("h1", {}, "My prescriptions"), await patientPrescriptionsSection(me, record.id, done)];
}

/**
 * One prescription as the server prints it, with a button to print it. The server's page is
 * parsed inert (DOMParser runs no script, and this page's policy allows none) and its body is
 * shown; its own style is left behind, app.css styles it for screen and paper.
 */
export async function prescriptionPage(id) {
  const html = await getHtml(`/prescriptions/${id}/print`);
  const printed = new DOMParser().parseFromString(html, "text/html");
  const sheet = h("article", { class: "printable", "aria-label": "Prescription" });
  sheet.append(...[...printed.body.childNodes].map((n) => document.importNode(n, true)));
  return [
    h("div", { class: "no-print controls" }, action("Print", async () => window.print()), h("a", { href: "#/" }, "Back")),
    sheet,
  ];
}
