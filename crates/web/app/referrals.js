// Referrals: a doctor's inbox and outbox with the answers each party may give, one referral
// with what was shared, and the form that sends one.

import { get, post, query } from "./api.js";
import { action, clinicTime, facts, field, form, formBody, h, notice, section, table } from "./dom.js";

const URGENCIES = ["routine", "urgent", "emergency"];

/** The answers `me` may give to `r` now (the referral's own rule). */
function answers(me, r, done) {
  const mine = r.to_doctor.id === me.id;
  const answer = (verb, body) => async () => {
    await post(`/referrals/${r.id}/${verb}`, body ?? {});
    await done();
    notice(`The referral is ${verb === "cancel" ? "cancelled" : `${verb}${verb.endsWith("e") ? "d" : "ed"}`}.`);
  };
  const withText = (summary, label, name, verb) =>
    h("details", {}, h("summary", { "aria-label": `${summary.replace("…", "")} the referral of ${r.patient_name}` }, summary), form(summary, summary.replace("…", ""), [field(label, name, { multiline: true, required: true })], async (data) => {
      await answer(verb, formBody(data))();
    }));
  const about = (verb) => ({ "aria-label": `${verb} the referral of ${r.patient_name}` });
  if (mine && r.status === "sent") return [action("Accept", answer("accept"), about("Accept")), withText("Decline…", "Why you decline", "reason", "decline")];
  if (mine && r.status === "accepted") return [withText("Complete…", "Outcome", "outcome", "complete")];
  if (!mine && r.status === "sent") return [action("Cancel the referral", answer("cancel"), about("Cancel"))];
  return [];
}

function referralTable(me, items, box, done) {
  const other = box === "inbox" ? ["From", (r) => r.from_doctor.full_name ?? ""] : ["To", (r) => r.to_doctor.full_name ?? ""];
  return table(
    [
      ["Sent", (r) => clinicTime(r.created_at)],
      other,
      ["Patient", (r) => h("a", { href: `#/referrals/${r.id}` }, r.patient_name)],
      ["Urgency", (r) => r.urgency],
      ["Status", (r) => r.status],
      ["Actions", (r) => h("div", { class: "controls" }, answers(me, r, done))],
    ],
    items,
    box === "inbox" ? "No referrals to you." : "You have sent no referrals.",
  );
}

/** The referrals `me` received, newest first, with their answers. */
export async function inbox(me, done) {
  const page = await get(`/referrals${query({ box: "inbox", limit: 50 })}`);
  return referralTable(me, page.items, "inbox", done);
}

export async function referralsPage(me, done) {
  const [inboxTable, outbox] = await Promise.all([inbox(me, done), get(`/referrals${query({ box: "outbox", limit: 50 })}`)]);
  return [
    h("h1", {}, "Referrals"),
    h("p", {}, h("a", { href: "#/referrals/new" }, "Send a referral")),
    section("Referrals to me", inboxTable),
    section("Referrals I sent", referralTable(me, outbox.items, "outbox", done)),
  ];
}

/** One referral: what was sent (the record as it was), its answers, and the patient's record once accepted. */
export async function referralPage(me, id, done) {
  const r = await get(`/referrals/${id}`);
  const shared = r.snapshot;
  return [
    h("h1", {}, `Referral of ${r.patient_name}`),
    facts([
      ["From", r.from_doctor.full_name],
      ["To", r.to_doctor.full_name],
      ["Sent", clinicTime(r.created_at)],
      ["Urgency", r.urgency],
      ["Status", r.status],
      ["Reason", r.reason],
      ["Why declined", r.decline_reason],
      ["Outcome", r.outcome],
    ]),
    h("div", { class: "controls" }, answers(me, r, done)),
    shared
      ? section(
          "What was shared",
          h("p", { class: "body" }, shared.clinical_summary),
          facts([
            ["Record number", shared.patient.mrn],
            ["Born", shared.patient.date_of_birth],
            ["Allergies", shared.medical.allergies.map((a) => a.substance).join(", ") || "none recorded"],
            ["Conditions", shared.medical.conditions.map((c) => c.name).join(", ") || "none recorded"],
            ["Medications", shared.medical.medications.map((m) => `${m.name} ${m.dose}`).join(", ") || "none recorded"],
          ]),
        )
      : null,
    ["accepted", "completed"].includes(r.status) || r.from_doctor.id === me.id ? h("p", {}, h("a", { href: `#/patients/${r.patient_id}` }, "Open the patient's record")) : null,
  ];
}

/** Pick the patient (one of mine), write, pick the doctor, send. */
export async function sendReferralPage(me, patientId) {
  const [patients, doctors] = await Promise.all([get(`/patients${query({ limit: 100 })}`), get(`/doctors${query({ limit: 100 })}`)]);
  const send = form("Send a referral", "Send the referral", [
    field("Patient", "patient_id", { value: patientId ?? "" }, [["", "Choose a patient"], ...patients.items.map((p) => [p.id, `${p.full_name} (${p.mrn})`])]),
    field("Reason", "reason", { required: true }),
    field("Clinical summary", "clinical_summary", { multiline: true, required: true }),
    field("Urgency", "urgency", { value: "routine" }, URGENCIES),
    field("To doctor", "to_doctor_id", {}, [["", "Choose a doctor"], ...doctors.items.filter((d) => d.id !== me.id).map((d) => [d.id, `${d.full_name}${d.specializations.length ? ` (${d.specializations.join(", ")})` : ""}`])]),
  ], async (data) => {
    const sent = await post("/referrals", formBody(data));
    notice(`Referral sent to ${sent.to_doctor.full_name ?? "the doctor"}.`);
    location.hash = `#/referrals/${sent.id}`;
  });
  return [h("h1", {}, "Send a referral"), send];
}
