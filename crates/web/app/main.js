// The app's shell: sign-in, the signed-in bar (sections, the notification bell, sign out), and
// a home for each role. Routes are URL fragments (`#/`, `#/notifications`), so no page reload
// ever drops the access token kept in memory.

import { ApiError, get, hasSession, post, query, signIn, signOut } from "./api.js";
import { clinicTime, field, h, notice, show, showErrors, table } from "./dom.js";
import { connect } from "./live.js";

let me = null;
let disconnect = null;
let unread = 0;

const ROLE_NAMES = {
  admin: "Administrator",
  secretary: "Secretary",
  doctor: "Doctor",
  laboratory: "Laboratory",
  patient: "Patient",
};

function signInPage(message) {
  const errors = h("p", { class: "error", role: "alert" }, message || "");
  const form = h(
    "form",
    { class: "stack", "aria-labelledby": "sign-in-title" },
    h("label", {}, "Username", h("input", { name: "username", autocomplete: "username", required: true })),
    h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit" }, "Sign in"),
    errors,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.textContent = "";
    const data = new FormData(form);
    try {
      await signIn(data.get("username"), data.get("password"));
      await start();
    } catch (error) {
      errors.textContent = error instanceof ApiError ? error.message : "The server could not be reached.";
    }
  });
  document.getElementById("nav").replaceChildren();
  document.getElementById("account").replaceChildren();
  show(true, h("h1", { id: "sign-in-title" }, "Sign in to CareHub"), form);
  form.querySelector("input").focus();
}

function bar() {
  const badge = h("span", { class: "badge", id: "unread" }, String(unread));
  const bell = h("a", { href: "#/notifications", class: "bell", "aria-label": `Notifications, ${unread} unread` }, "Notifications ", badge);
  document.getElementById("nav").replaceChildren(h("a", { href: "#/" }, "Home"), bell);
  const out = h("button", { class: "secondary", type: "button", onclick: leave }, "Sign out");
  document.getElementById("account").replaceChildren(
    h("span", {}, `${me.full_name} (${ROLE_NAMES[me.role] ?? me.role})`),
    out,
  );
}

function setUnread(count) {
  unread = count;
  const badge = document.getElementById("unread");
  if (!badge) return;
  badge.textContent = String(count);
  badge.parentElement.setAttribute("aria-label", `Notifications, ${count} unread`);
}

async function leave() {
  disconnect?.();
  disconnect = null;
  me = null;
  try {
    await signOut();
  } finally {
    location.hash = "#/";
    signInPage("You are signed out.");
  }
}

async function start() {
  me = await get("/users/me");
  bar();
  disconnect?.();
  disconnect = connect({
    onNotification: (n) => {
      // What the notification is about may be on the page shown: show it again, up to date
      // (not the secretary's search, which holds what they typed).
      if (me.role !== "secretary" || location.hash === "#/notifications") route(false);
      if (!n.read_at) notice(n.data.title ?? `New notification: ${n.kind}`);
    },
    onUnread: setUnread,
    onLive: (up) => {
      document.getElementById("nav").dataset.live = up ? "on" : "off";
    },
  });
  await route();
}

// Homes by role -----------------------------------------------------------------------------

function today() {
  const start = new Date();
  start.setHours(0, 0, 0, 0);
  const end = new Date(start);
  end.setDate(end.getDate() + 1);
  return { from: start.toISOString(), to: end.toISOString() };
}

const appointmentColumns = [
  ["Time", (a) => `${clinicTime(a.start)} – ${clinicTime(a.end).slice(11)}`],
  ["Doctor", (a) => a.doctor_name ?? ""],
  ["Reason", (a) => a.reason],
  ["Status", (a) => a.status],
];

async function doctorHome() {
  const [day, inbox] = await Promise.all([
    get(`/appointments${query({ doctor_id: me.id, ...today(), limit: 100 })}`),
    get(`/referrals${query({ box: "inbox", limit: 50 })}`),
  ]);
  return [
    h("h2", {}, "My appointments today"),
    table(appointmentColumns, day.items, "No appointments today."),
    h("h2", {}, "Referrals to me"),
    table(
      [
        ["Received", (r) => clinicTime(r.created_at)],
        ["From", (r) => r.from_doctor.full_name ?? ""],
        ["Patient", (r) => r.patient_name],
        ["Urgency", (r) => r.urgency],
        ["Status", (r) => r.status],
      ],
      inbox.items,
      "No referrals.",
    ),
  ];
}

async function secretaryHome() {
  const results = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "stack", role: "search" },
    h("label", {}, "Find a patient (name or record number)", h("input", { name: "q", minlength: "2", required: true })),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const page = await get(`/patients${query({ q: new FormData(form).get("q"), limit: 50 })}`);
      results.replaceChildren(
        table(
          [
            ["Record", (p) => p.mrn],
            ["Name", (p) => p.full_name],
            ["Born", (p) => p.date_of_birth],
          ],
          page.items,
          "No patient matches.",
        ),
      );
    } catch (error) {
      results.replaceChildren(h("p", { class: "error" }, error.message));
    }
  });
  return [h("h2", {}, "Patients"), form, results, registerForm()];
}

/** The body of `POST /patients` from the form: empty inputs are left out. */
function patientBody(data) {
  const text = (name) => {
    const value = String(data.get(name) ?? "").trim();
    return value === "" ? undefined : value;
  };
  const contact = { phone: text("contact.phone"), email: text("contact.email") };
  return {
    full_name: text("full_name") ?? "",
    date_of_birth: text("date_of_birth") ?? "",
    sex: text("sex"),
    contact: contact.phone || contact.email ? contact : undefined,
  };
}

function registerForm() {
  const form = h(
    "form",
    { class: "stack", "aria-labelledby": "register-title", novalidate: true },
    field("Full name", "full_name", { autocomplete: "off" }),
    field("Date of birth", "date_of_birth", { type: "date" }),
    field("Sex", "sex", {}, ["female", "male", "other", "unknown"]),
    field("Phone", "contact.phone", { type: "tel", autocomplete: "off" }),
    field("E-mail", "contact.email", { type: "email", autocomplete: "off" }),
    h("button", { type: "submit" }, "Register"),
    h("p", { class: "error", role: "alert", tabindex: "-1" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showErrors(form, null);
    try {
      const patient = await post("/patients", patientBody(new FormData(form)));
      form.reset();
      notice(`Registered ${patient.full_name}, record ${patient.mrn}.`);
    } catch (error) {
      showErrors(form, error);
    }
  });
  return [h("h2", { id: "register-title" }, "Register a patient"), form];
}

async function patientHome() {
  let record;
  try {
    record = await get("/users/me/patient");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return [h("p", {}, "No patient record is linked to your account yet. The clinic's secretaries link it.")];
    }
    throw error;
  }
  const appointments = await get(`/appointments${query({ patient_id: record.id, limit: 50 })}`);
  return [
    h("h2", {}, "My appointments"),
    table(appointmentColumns, appointments.items, "No appointments."),
  ];
}

async function adminHome() {
  const users = await get(`/admin/users${query({ limit: 100 })}`);
  return [
    h("h2", {}, "Users"),
    table(
      [
        ["Username", (u) => u.username],
        ["Name", (u) => u.full_name],
        ["Role", (u) => ROLE_NAMES[u.role] ?? u.role],
        ["Status", (u) => u.status],
      ],
      users.items,
      "No users.",
    ),
  ];
}

async function laboratoryHome() {
  return [h("p", {}, `Signed in as ${me.username}.`)];
}

const HOMES = {
  doctor: doctorHome,
  secretary: secretaryHome,
  patient: patientHome,
  admin: adminHome,
  laboratory: laboratoryHome,
};

async function notificationsPage() {
  const list = await get(`/notifications${query({ after: 0, limit: 500 })}`);
  const items = [...list.items].reverse();
  const readAll = h("button", {
    type: "button",
    onclick: async () => {
      await post("/notifications/read-all");
      await route();
    },
  }, "Mark all read");
  return [
    readAll,
    table(
      [
        ["When", (n) => clinicTime(n.created_at)],
        ["What", (n) => n.data.title ?? n.kind],
        ["Read", (n) => (n.read_at ? "yes" : "no")],
      ],
      items,
      "No notifications.",
    ),
  ];
}

/** Shows the page the URL names; `focus` moves focus to it (not when redrawn for news). */
async function route(focus = true) {
  if (!me) return;
  const onNotifications = location.hash === "#/notifications";
  const title = onNotifications ? "Notifications" : `${ROLE_NAMES[me.role] ?? me.role} home`;
  const page = onNotifications ? notificationsPage : HOMES[me.role];
  try {
    show(focus, h("h1", {}, title), await page());
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signInPage("Your session ended. Sign in again.");
    show(focus, h("h1", {}, "Something went wrong"), h("p", { class: "error" }, error.message));
  }
}

window.addEventListener("hashchange", () => route());
document.addEventListener("DOMContentLoaded", async () => {
  if (!hasSession()) return signInPage();
  try {
    await start();
  } catch {
    signInPage();
  }
});
