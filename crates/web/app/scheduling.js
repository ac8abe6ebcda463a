// Scheduling: appointment lists with the status changes the caller's role may make, the visit
// note, the way into a video consultation's call, and booking (in person or by video) or
// moving an appointment on one of a doctor's free slots.

import { get, patch, post, query } from "./api.js";
import { callHref } from "./calls.js";
import { action, clinicSpan, clinicTime, field, form, formBody, h, notice, refill, table } from "./dom.js";
import { rateForm } from "./feedback.js";

/** The statuses each role may set, from each status (the API's own rule, for the buttons). */
const NEXT = {
  secretary: { booked: [["checked_in", "Check in"], ["no_show", "No-show"], ["cancelled", "Cancel"]], checked_in: [["cancelled", "Cancel"]] },
  doctor: { booked: [["cancelled", "Cancel"]], checked_in: [["in_progress", "Start visit"], ["cancelled", "Cancel"]], in_progress: [["completed", "Complete"]] },
  patient: { booked: [["cancelled", "Cancel"]] },
};

const STATUS_NAMES = {
  booked: "booked",
  checked_in: "checked in",
  in_progress: "in progress",
  completed: "completed",
  cancelled: "cancelled",
  no_show: "no-show",
};

/** The statuses in which a video consultation's call may still be joined. */
const CALLABLE = ["booked", "checked_in", "in_progress"];

/** Today and `days` days later (default: tomorrow) as `YYYY-MM-DD`, which the API reads as the clinic's days. */
export function today(days = 1) {
  const day = (offset) => {
    const d = new Date();
    d.setDate(d.getDate() + offset);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  };
  return { from: day(0), to: day(days) };
}

function span(a) {
  return clinicSpan(a.start, a.end);
}

/** A short form that asks for the reason of a cancellation, behind a disclosure. */
function cancelForm(appointment, done) {
  return h(
    "details",
    {},
    h("summary", { "aria-label": `Cancel the appointment of ${span(appointment)}` }, "Cancel…"),
    form("Cancel the appointment", "Cancel the appointment", [field("Reason", "reason", { required: true })], async (data) => {
      await post(`/appointments/${appointment.id}/status`, { status: "cancelled", reason: String(data.get("reason")).trim() });
      await done();
      notice("The appointment is cancelled.");
    }),
  );
}

function visitNoteForm(appointment, done) {
  return h(
    "details",
    {},
    h("summary", { "aria-label": `Visit note of ${span(appointment)}` }, "Visit note…"),
    form("Visit note", "Sign the visit note", [field("Visit note", "body", { multiline: true, required: true })], async (data) => {
      await post(`/appointments/${appointment.id}/visit-note`, formBody(data));
      await done();
      notice("The visit note is signed.");
    }),
  );
}

/** The controls the signed-in user may use on `appointment`. */
function controls(me, appointment, done) {
  const out = [];
  // The call is for the appointment's doctor and patient (a patient lists only their own).
  const party = me.role === "patient" || (me.role === "doctor" && me.id === appointment.doctor_id);
  if (appointment.video && party && CALLABLE.includes(appointment.status)) {
    out.push(h("a", { href: callHref(appointment.id), "aria-label": `Join video call: ${span(appointment)}` }, "Join video call"));
  }
  for (const [status, label] of NEXT[me.role]?.[appointment.status] ?? []) {
    if (status === "cancelled") out.push(cancelForm(appointment, done));
    else out.push(action(label, async () => {
      await post(`/appointments/${appointment.id}/status`, { status });
      await done();
      notice(`The appointment is ${STATUS_NAMES[status]}.`);
    }, { "aria-label": `${label}: ${span(appointment)}` }));
  }
  if (me.role === "doctor" && ["in_progress", "completed"].includes(appointment.status)) out.push(visitNoteForm(appointment, done));
  if (me.role === "patient" && appointment.status === "completed") out.push(rateForm(appointment, done));
  if ((me.role === "patient" || me.role === "secretary") && appointment.status === "booked") {
    // The free times are asked for when the disclosure is first opened, not for every row.
    const move = h("details", {}, h("summary", { "aria-label": `Move the appointment of ${span(appointment)}` }, "Move…"));
    move.addEventListener("toggle", () => {
      if (move.open && !move.querySelector("form")) move.append(slotPicker({ doctorId: appointment.doctor_id, button: "Move here", done, appointment }));
    });
    out.push(move);
  }
  return h("div", { class: "controls" }, out);
}

/**
 * A table of appointments with the buttons the caller may use; `done` redraws after a change.
 * `show` names the extra columns: `patient`, `doctor`.
 */
export function appointmentTable(me, items, done, show = ["patient", "doctor"]) {
  const columns = [["Time", span]];
  if (show.includes("patient")) {
    columns.push(["Patient", (a) => (me.role === "patient" ? a.patient_name ?? "" : h("a", { href: `#/patients/${a.patient_id}` }, a.patient_name ?? "Patient record"))]);
  }
  if (show.includes("doctor")) columns.push(["Doctor", (a) => a.doctor_name ?? ""]);
  const reason = (a) => (a.video ? [a.reason, " ", h("span", { class: "video-badge" }, "Video consultation")] : a.reason);
  columns.push(["Reason", reason], ["Status", (a) => STATUS_NAMES[a.status] ?? a.status], ["Actions", (a) => controls(me, a, done)]);
  return table(columns, items, "No appointments.");
}

/** The appointments that `filter` selects, in time order. */
export async function appointments(filter) {
  return (await get(`/appointments${query({ limit: 100, ...filter })}`)).items;
}

/**
 * Picks one of a doctor's free slots on a chosen day, then books it for `patientId` (with a
 * reason) or moves `appointment` there. The 409 of a slot taken meanwhile lists what is in
 * the way. `doctorId` absent: the doctor is chosen first.
 */
export function slotPicker({ doctorId, patientId, appointment, button, done }) {
  const slots = h("fieldset", { class: "slots" }, h("legend", {}, "Free times"), h("p", { class: "empty" }, "Choose a day to see the free times."));
  const doctorChoice = doctorId ? null : h("label", {}, "Doctor", h("select", { name: "doctor_id", required: true }));
  const day = h("label", {}, "Day", h("input", { name: "day", type: "date", value: today().from, required: true }));
  let latest = 0;
  const load = async () => {
    const doctor = doctorId ?? doctorChoice.querySelector("select").value;
    const date = day.querySelector("input").value;
    if (!doctor || !date) return;
    // Only the answer to the latest choice is shown, whichever arrives last.
    const asked = ++latest;
    const next = new Date(`${date}T12:00:00`);
    next.setDate(next.getDate() + 1);
    const to = next.toISOString().slice(0, 10);
    try {
      const free = await get(`/doctors/${doctor}/slots${query({ from: date, to })}`);
      if (asked !== latest) return;
      const choices = free.slots.map((slot, i) =>
        h("label", { class: "slot" }, h("input", { type: "radio", name: "slot", value: `${slot.start}|${slot.end}`, required: true, checked: i === 0 }), span(slot)),
      );
      refill(slots, h("legend", {}, "Free times"), choices.length ? choices : h("p", { class: "empty" }, "No free time that day."));
    } catch (error) {
      refill(slots, h("legend", {}, "Free times"), h("p", { class: "error" }, error.message));
    }
  };
  day.querySelector("input").addEventListener("change", load);
  if (doctorChoice) {
    get(`/doctors${query({ limit: 100 })}`).then((page) => {
      const select = doctorChoice.querySelector("select");
      refill(select, h("option", { value: "" }, "Choose a doctor"), page.items.map((d) => h("option", { value: d.id }, `${d.full_name}${d.specializations.length ? ` (${d.specializations.join(", ")})` : ""}`)));
      select.addEventListener("change", load);
    }, (error) => notice(error.message, true));
  } else {
    load();
  }
  const reason = appointment ? [] : [field("Reason for the visit", "reason", { required: true })];
  // Moving keeps the way of the visit; a booking chooses it.
  const video = appointment ? null : h("label", { class: "check" }, h("input", { type: "checkbox", name: "video", value: "yes" }), "Video consultation");
  return form(button, button, [doctorChoice, day, slots, reason, video], async (data) => {
    const chosen = data.get("slot");
    if (!chosen) throw new Error("Choose one of the free times.");
    const [start, end] = String(chosen).split("|");
    let said;
    if (appointment) {
      await patch(`/appointments/${appointment.id}`, { start, end });
      said = `The appointment is moved to ${clinicTime(start)}.`;
    } else {
      const doctor = doctorId ?? data.get("doctor_id");
      const body = { doctor_id: doctor, patient_id: patientId, start, end, reason: String(data.get("reason")).trim(), video: data.get("video") === "yes" };
      const booked = await post("/appointments", body);
      said = `Booked ${clinicTime(booked.start)} with ${booked.doctor_name ?? "the doctor"}${booked.video ? ", by video" : ""}.`;
    }
    // Said once the page shows the change.
    await done();
    notice(said);
  });
}
