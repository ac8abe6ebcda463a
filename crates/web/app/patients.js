// Patients: finding and registering them, and a patient's record as the caller's role may see
// it (profile, medical information, notes with their amendments, care team, appointments, who
// accessed it), with the changes the role may make.

import { ApiError, del, get, patch, post, put, query } from "./api.js";
import { action, clinicTime, facts, field, form, formBody, h, notice, refill, section, table } from "./dom.js";
import { appointmentTable, appointments, slotPicker } from "./scheduling.js";

const SEXES = ["female", "male", "other", "unknown"];
const BLOOD_TYPES = [["", "Unknown"], "A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"];
const SEVERITIES = [["", "—"], "mild", "moderate", "severe", ["life_threatening", "life-threatening"]];
const NOTE_KINDS = [["", "—"], ["check_up", "check-up"], "annotation", "progress", "consultation", "discharge"];
const LISTS = ["contact.address.lines"];

const group = (legend, ...children) => h("fieldset", {}, h("legend", {}, legend), children);

/** Every field the API takes for a patient, filled in from `p` (a patient, when editing). */
function patientFields(p = {}) {
  const contact = p.contact ?? {};
  const address = contact.address ?? {};
  const insurance = p.insurance ?? {};
  const emergency = p.emergency_contact ?? {};
  const location = p.location ?? {};
  const identifiers = [...(p.identifiers ?? []), {}];
  return [
    group(
      "Person",
      field("Full name", "full_name", { autocomplete: "off", required: true, value: p.full_name }),
      field("Date of birth", "date_of_birth", { type: "date", required: true, value: p.date_of_birth }),
      field("Sex", "sex", { required: true, value: p.sex ?? "" }, [["", "Choose…"], ...SEXES]),
    ),
    group(
      "Contact",
      field("Phone", "contact.phone", { type: "tel", autocomplete: "off", value: contact.phone }),
      field("E-mail", "contact.email", { type: "email", autocomplete: "off", value: contact.email }),
      field("Address (one line each)", "contact.address.lines", { multiline: true, value: (address.lines ?? []).join("\n") }),
      field("City", "contact.address.city", { value: address.city }),
      field("Postal code", "contact.address.postal_code", { value: address.postal_code }),
      field("Country", "contact.address.country", { value: address.country }),
    ),
    group(
      "Identifiers",
      identifiers.map((id, i) => [
        field(`Identifier ${i + 1}: system`, `identifiers[${i}].system`, { value: id.system, placeholder: "national_id" }),
        field(`Identifier ${i + 1}: value`, `identifiers[${i}].value`, { value: id.value }),
      ]),
    ),
    group(
      "Insurance",
      field("Provider", "insurance.provider", { value: insurance.provider }),
      field("Policy number", "insurance.policy_number", { value: insurance.policy_number }),
      field("Group", "insurance.group", { value: insurance.group }),
      field("Valid until", "insurance.valid_until", { type: "date", value: insurance.valid_until }),
    ),
    group(
      "Emergency contact",
      field("Name", "emergency_contact.name", { value: emergency.name }),
      field("Relationship", "emergency_contact.relationship", { value: emergency.relationship }),
      field("Phone", "emergency_contact.phone", { type: "tel", value: emergency.phone }),
    ),
    group(
      "In the clinic",
      field("Room", "location.room", { value: location.room }),
      field("Bed", "location.bed", { value: location.bed }),
    ),
    group(
      "Sign-in account",
      field("Account id of the patient's own account (links it to this record)", "user_id", { value: p.user_id, autocomplete: "off" }),
    ),
  ];
}

/** Registers a patient, then opens their record. */
export function registerForm() {
  const register = form("Register a patient", "Register", patientFields(), async (data, element) => {
    const patient = await post("/patients", formBody(data, { lists: LISTS }));
    element.reset();
    notice(`Registered ${patient.full_name}, record ${patient.mrn}.`);
    location.hash = `#/patients/${patient.id}`;
  });
  return section("Register a patient", register);
}

/** Finds patients by name or record number (a doctor: their own patients, or an exact record number). */
export function searchForm() {
  const results = h("div", { "aria-live": "polite" });
  const search = form("Find a patient", "Search", [field("Name or record number", "q", { minlength: "2", required: true })], async (data) => {
    // In the body, not the URL: a name in a URL lingers in histories and proxies' logs.
    const page = await post("/patients/search", { q: String(data.get("q")).trim(), limit: 50 });
    refill(results, patientTable(page.items));
  });
  search.setAttribute("role", "search");
  return section("Find a patient", search, results);
}

export function patientTable(items) {
  return table(
    [
      ["Record", (p) => p.mrn],
      ["Name", (p) => h("a", { href: `#/patients/${p.id}` }, p.full_name)],
      ["Born", (p) => p.date_of_birth],
    ],
    items,
    "No patient matches.",
  );
}

/** A doctor's patients: their current care teams. */
export async function myPatientsPage() {
  const page = await get(`/patients${query({ limit: 100 })}`);
  return [h("h1", {}, "My patients"), patientTable(page.items), searchForm()];
}

function profile(p) {
  const contact = p.contact ?? {};
  const address = contact.address;
  return facts([
    ["Record number", p.mrn],
    ["Born", p.date_of_birth],
    ["Sex", p.sex],
    ["Phone", contact.phone],
    ["E-mail", contact.email],
    ["Address", address ? [...address.lines, [address.postal_code, address.city].filter(Boolean).join(" "), address.country].filter(Boolean).join(", ") : null],
    ["Identifiers", p.identifiers.map((i) => `${i.system}: ${i.value}`).join("; ")],
    ["Insurance", p.insurance ? `${p.insurance.provider}, policy ${p.insurance.policy_number}${p.insurance.group ? `, group ${p.insurance.group}` : ""}${p.insurance.valid_until ? `, valid until ${p.insurance.valid_until}` : ""}` : null],
    ["Emergency contact", p.emergency_contact ? `${p.emergency_contact.name}${p.emergency_contact.relationship ? ` (${p.emergency_contact.relationship})` : ""}, ${p.emergency_contact.phone}` : null],
    ["In the clinic", p.location ? `room ${p.location.room}${p.location.bed ? `, bed ${p.location.bed}` : ""}` : null],
  ]);
}

function editProfile(p, done) {
  const edit = form("Edit details", "Save details", patientFields(p), async (data) => {
    await patch(`/patients/${p.id}`, formBody(data, { clear: true, lists: LISTS }));
    await done();
    notice("The details are saved.");
  });
  return h("details", {}, h("summary", {}, "Edit details and insurance…"), edit);
}

function medicalView(m) {
  const list = (items, text, empty) => (items.length ? h("ul", {}, items.map((i) => h("li", {}, text(i)))) : h("p", { class: "empty" }, empty));
  return [
    facts([["Blood type", m.blood_type ?? "unknown"], ["Last changed", m.updated_at ? clinicTime(m.updated_at) : null]]),
    h("h3", {}, "Allergies"),
    list(m.allergies, (a) => [a.substance, a.reaction && `: ${a.reaction}`, a.severity && ` (${a.severity.replace("_", "-")})`].filter(Boolean).join(""), "No known allergies."),
    h("h3", {}, "Conditions"),
    list(m.conditions, (c) => [c.name, c.code && ` [${c.code}]`, c.since && `, since ${c.since}`].filter(Boolean).join(""), "No conditions recorded."),
    h("h3", {}, "Medications"),
    list(m.medications, (d) => `${d.name}, ${d.dose}, ${d.frequency}`, "No medications recorded."),
  ];
}

/** Rows of one list of the medical information, one blank row more to add to it. */
function rows(legend, name, items, columns) {
  const all = [...items, {}];
  return group(legend, all.map((item, i) => h("div", { class: "row" }, columns.map(([label, key, choices]) => field(`${label} ${i + 1}`, `${name}[${i}].${key}`, { value: item[key] }, choices ?? null)))));
}

function editMedical(patientId, m, done) {
  const edit = form("Edit medical information", "Save medical information", [
    field("Blood type", "blood_type", { value: m.blood_type ?? "" }, BLOOD_TYPES),
    rows("Allergies", "allergies", m.allergies, [["Substance", "substance"], ["Reaction", "reaction"], ["Severity", "severity", SEVERITIES]]),
    rows("Conditions", "conditions", m.conditions, [["Condition", "name"], ["Code", "code"], ["Since", "since"]]),
    rows("Medications", "medications", m.medications, [["Medication", "name"], ["Dose", "dose"], ["Frequency", "frequency"]]),
  ], async (data) => {
    const body = formBody(data);
    await put(`/patients/${patientId}/medical`, { allergies: [], conditions: [], medications: [], ...body });
    await done();
    notice("The medical information is saved.");
  });
  return h("details", {}, h("summary", {}, "Edit medical information…"), edit);
}

function noteForm(patientId, amends, done) {
  const label = amends ? "Amend this note" : "Write a note";
  return form(label, amends ? "Sign the amendment" : "Sign the note", [
    field(amends ? "Amendment" : "Note", "body", { multiline: true, required: true }),
    field("Kind", "kind", {}, NOTE_KINDS),
  ], async (data) => {
    await post(`/patients/${patientId}/notes`, { ...formBody(data), amends: amends ?? undefined });
    await done();
    notice(amends ? "The amendment is signed." : "The note is signed.");
  });
}

function note(n, amendments, canWrite, done) {
  return h(
    "article",
    { class: "note" },
    h("p", { class: "meta" }, `${clinicTime(n.created_at)}, ${n.author.full_name ?? "a former user"}${n.kind ? `, ${n.kind.replace("_", "-")}` : ""}${n.appointment_id ? ", visit note" : ""}`),
    h("p", { class: "body" }, n.body),
    amendments.map((a) => h("div", { class: "amendment" }, h("p", { class: "meta" }, `Amended ${clinicTime(a.created_at)} by ${a.author.full_name ?? "a former user"}`), h("p", { class: "body" }, a.body))),
    canWrite ? h("details", {}, h("summary", {}, "Amend…"), noteForm(n.patient_id, n.id, done)) : null,
  );
}

function notesView(patientId, items, canWrite, done) {
  const originals = items.filter((n) => !n.amends);
  const amendmentsOf = (id) => items.filter((n) => n.amends === id).reverse();
  return [
    originals.length ? originals.map((n) => note(n, amendmentsOf(n.id), canWrite, done)) : h("p", { class: "empty" }, "No notes."),
    canWrite ? h("details", {}, h("summary", {}, "Write a note…"), noteForm(patientId, null, done)) : null,
  ];
}

async function careTeamView(me, patientId, done) {
  const team = await get(`/patients/${patientId}/care-team`);
  const current = team.items.filter((m) => m.current);
  const list = table(
    [
      ["Doctor", (m) => m.doctor.full_name ?? ""],
      ["Since", (m) => clinicTime(m.started_at)],
      ["Until", (m) => (m.ended_at ? clinicTime(m.ended_at) : "")],
      ["Why", (m) => (m.referral_id ? "referral" : m.appointment_id ? "appointment" : "added")],
      ["Actions", (m) => (me.role === "admin" ? action("Remove", async () => {
        await del(`/patients/${patientId}/care-team/${m.doctor.id}`);
        await done();
        notice(`${m.doctor.full_name ?? "The doctor"} is no longer on the care team.`);
      }, { "aria-label": `Remove ${m.doctor.full_name ?? "the doctor"} from the care team` }) : "")],
    ],
    current,
    "No doctor is on the care team.",
  );
  const doctors = (await get(`/doctors${query({ limit: 100 })}`)).items.filter((d) => !current.some((m) => m.doctor.id === d.id));
  const add = form("Add a doctor to the care team", "Add to the care team", [field("Doctor", "doctor_id", {}, doctors.map((d) => [d.id, d.full_name]))], async (data) => {
    await post(`/patients/${patientId}/care-team`, { doctor_id: data.get("doctor_id") });
    await done();
    notice("The doctor is on the care team.");
  });
  return [list, doctors.length ? add : null];
}

async function accessLog(patientId) {
  const page = await get(`/patients/${patientId}/access-log${query({ limit: 100 })}`);
  return table(
    [
      ["When", (e) => clinicTime(e.at)],
      ["Who", (e) => e.actor.full_name ?? "a former user"],
      ["Role", (e) => e.actor.role],
      ["What", (e) => e.action.replaceAll("_", " ").replaceAll(".", ": ")],
      ["Allowed", (e) => (e.outcome === "allowed" ? `yes (${(e.basis ?? "").replaceAll("_", " ")})` : "no")],
    ],
    page.items,
    "Nobody has accessed the record.",
  );
}

/** For a doctor outside the care team: break the glass, with a reason. */
function emergencyAccess(patientId, done) {
  return [
    h("h1", {}, "Patient record"),
    h("p", {}, "You are not on this patient's care team, so the record is not shown. In an emergency you may open it for 60 minutes; the reason is kept in the audit trail and the administrators see it."),
    form("Emergency access", "Open the record in an emergency", [field("Reason", "reason", { multiline: true, required: true })], async (data) => {
      await post(`/patients/${patientId}/emergency-access`, { reason: String(data.get("reason")).trim() });
      await done();
      notice("Emergency access granted for 60 minutes.");
    }),
  ];
}

/**
 * The record of patient `id` as `me` may see it; `title` replaces the patient's name as the
 * heading (the patient's own home). `done` draws it again after a change.
 */
export async function recordPage(me, id, done, title = null) {
  if (me.role === "admin") {
    return [h("h1", {}, "Patient"), section("Care team", await careTeamView(me, id, done)), section("Who accessed the record", await accessLog(id))];
  }
  let patient;
  try {
    patient = await get(`/patients/${id}`);
  } catch (error) {
    if (me.role === "doctor" && error instanceof ApiError && error.status === 404) return emergencyAccess(id, done);
    throw error;
  }
  const clinical = me.role === "doctor" || me.role === "patient";
  const [medical, notes, booked] = await Promise.all([
    clinical ? get(`/patients/${id}/medical`) : null,
    clinical ? get(`/patients/${id}/notes${query({ limit: 100 })}`) : null,
    appointments(me.role === "doctor" ? { doctor_id: me.id, patient_id: id } : { patient_id: id }),
  ]);
  const doctor = me.role === "doctor";
  return [
    h("h1", {}, title ?? patient.full_name),
    section("Details", profile(patient), me.role === "patient" ? null : editProfile(patient, done)),
    medical ? section("Medical information", medicalView(medical), doctor ? editMedical(id, medical, done) : null) : null,
    notes ? section("Notes", notesView(id, notes.items, doctor, done)) : null,
    doctor ? section("Care team", await careTeamView(me, id, done), h("p", {}, h("a", { href: `#/referrals/new/${id}` }, "Refer this patient to another doctor"))) : null,
    section(doctor ? "My appointments with this patient" : "Appointments", appointmentTable(me, booked, done, doctor ? [] : ["doctor"])),
    me.role === "doctor" ? null : section("Book an appointment", slotPicker({ patientId: id, button: "Book", done })),
    me.role === "patient" ? section("Who accessed my record", await accessLog(id)) : null,
  ];
}
