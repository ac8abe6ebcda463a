// Feedback: the patient rates a completed visit (1 to 5, with a comment if they like), once;
// a doctor reads their own ratings, without who wrote them; an administrator reads any
// doctor's, and hides a comment with a reason.

import { get, post, query } from "./api.js";
import { clinicTime, field, form, formBody, h, notice, refill, section, table } from "./dom.js";

const STARS = [["5", "5: excellent"], ["4", "4: good"], ["3", "3: fair"], ["2", "2: poor"], ["1", "1: very poor"]];

/** The patient's form to rate a completed appointment, in a disclosure. */
export function rateForm(appointment, done) {
  const element = form(`Rate the visit of ${clinicTime(appointment.start)}`, "Send the rating", [
    field("Rating", "rating", { value: "5" }, STARS),
    field("Comment (optional)", "comment", { multiline: true, maxlength: "2000" }),
  ], async (data) => {
    const body = formBody(data);
    body.rating = Number(body.rating);
    await post(`/appointments/${appointment.id}/feedback`, body);
    notice("Thank you: your rating is sent.");
    await done();
  });
  return h("details", {}, h("summary", { "aria-label": `Rate this visit… (${clinicTime(appointment.start)})` }, "Rate this visit…"), element);
}

/** A doctor's own ratings: the average, the count, each comment, newest first. */
export async function myFeedbackPage(me) {
  const mine = await get(`/doctors/${me.id}/feedback`);
  const average = mine.average === null ? "no rating yet" : `${mine.average.toFixed(1)} of 5`;
  return [
    h("h1", {}, "My feedback"),
    h("p", {}, `Average ${average}, from ${mine.count} rating${mine.count === 1 ? "" : "s"}. Patients are not named.`),
    section(
      "Ratings",
      table(
        [
          ["When", (f) => clinicTime(f.created_at)],
          ["Rating", (f) => `${f.rating} of 5`],
          ["Comment", (f) => h("span", { class: "body" }, f.comment ?? "")],
        ],
        mine.items,
        "No ratings yet.",
      ),
    ),
  ];
}

/** An administrator's form to hide a rating's comment, with a reason, in a disclosure. */
function hideForm(item, done) {
  const when = clinicTime(item.created_at);
  const element = form(`Hide the comment of ${when}`, "Hide the comment", [field("Reason", "reason", { multiline: true, required: true, maxlength: "500" })], async (data) => {
    await post(`/appointments/${item.appointment_id}/feedback/hide`, { reason: String(data.get("reason") ?? "").trim() });
    notice("The comment is hidden. The rating still counts.");
    await done();
  });
  return h("details", {}, h("summary", { "aria-label": `Hide… (the comment of ${when})` }, "Hide…"), element);
}

/** What an administrator sees of one rating's comment: hidden (why, when), or a way to hide it. */
function moderation(item, done) {
  if (item.hidden) return h("span", { class: "meta" }, `Hidden ${clinicTime(item.hidden.at)}: ${item.hidden.reason}`);
  return item.comment ? hideForm(item, done) : "";
}

/** An administrator's view of every doctor's ratings, one doctor at a time. */
export async function feedbackAdminPage() {
  const doctors = (await get(`/doctors${query({ limit: 100 })}`)).items;
  const box = h("div", { "aria-live": "polite" });
  const load = async (doctorId) => {
    const feedback = await get(`/doctors/${doctorId}/feedback`);
    const average = feedback.average === null ? "no rating yet" : `${feedback.average.toFixed(1)} of 5`;
    refill(
      box,
      h("p", {}, `Average ${average}, from ${feedback.count} rating${feedback.count === 1 ? "" : "s"}.`),
      table(
        [
          ["When", (f) => clinicTime(f.created_at)],
          ["Rating", (f) => `${f.rating} of 5`],
          ["Comment", (f) => h("span", { class: "body" }, f.comment ?? "")],
          ["Moderation", (f) => moderation(f, () => load(doctorId))],
        ],
        feedback.items,
        "No ratings yet.",
      ),
    );
  };
  if (!doctors.length) return [h("h1", {}, "Feedback"), h("p", {}, "There are no doctors yet.")];
  const choice = form("Choose a doctor", "Show the ratings", [field("Doctor", "doctor_id", {}, doctors.map((d) => [d.id, d.full_name]))], async (data) => {
    await load(String(data.get("doctor_id")));
  });
  await load(doctors[0].id);
  return [h("h1", {}, "Feedback"), h("p", {}, "Patients' ratings of completed visits. Hiding a comment keeps the rating, and is audited."), choice, box];
}
