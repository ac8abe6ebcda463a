// Feedback: the patient rates a completed visit (1 to 5, with a comment if they like), once;
// a doctor reads their own ratings, without who wrote them.

import { get, post } from "./api.js";
import { clinicTime, field, form, formBody, h, notice, section, table } from "./dom.js";

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
