// The app's shell: sign-in, the signed-in bar (sections, the notification bell, sign out), and
// a home for each role. Routes are URL fragments (`#/`, `#/notifications`), so no page reload
// ever drops the access token kept in memory.

import { auditPage, emergencyAccessesPage, ROLE_NAMES, usersSection } from "./admin.js";
import { ApiError, get, hasSession, post, query, signIn, signOut } from "./api.js";
import { callFrame, callPage, callShown, callSocket, endCall } from "./calls.js";
import { action, clinicTime, h, notice, section, show, table } from "./dom.js";
import { labOrderPage, labQueuePage, myLabOrdersPage, myResultsPage, patientLabSection } from "./lab.js";
import { connect } from "./live.js";
import { myPatientsPage, recordPage, registerForm, searchForm } from "./patients.js";
import { feedbackAdminPage, myFeedbackPage } from "./feedback.js";
import { conversationPage, conversationsPage, patientMessagesSection } from "./messages.js";
import { myPrescriptionsPage, patientPrescriptionsSection, prescriptionPage } from "./prescriptions.js";
import { inbox, referralPage, referralsPage, sendReferralPage } from "./referrals.js";
import { appointments, appointmentTable, today } from "./scheduling.js";

let me = null;
/** The socket while signed in: `close()`, `send(frame)` (see live.js). */
let live = null;
let unread = 0;
/** The conversation page shown, if one is: its id and what it does with a message frame. */
let thread = null;

/** Lets the conversation page shown take the socket's frames of its conversation. */
function listen(id, handle) {
  thread = { id, handle };
}

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
  const links = SECTIONS[me.role].map(([label, hash]) => h("a", { href: hash }, label));
  document.getElementById("nav").replaceChildren(h("a", { href: "#/" }, "Home"), ...links, bell);
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
  endCall();
  live?.close();
  live = null;
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
  live?.close();
  live = connect({
    onNotification: (n) => {
      // What the notification is about may be on the page shown: show it again, up to date,
      // unless the user is typing into it.
      if (!document.getElementById("main").dataset.typing) route(false);
      if (!n.read_at) notice(n.data.title ?? `New notification: ${n.kind}`);
    },
    onMessage: (frame) => {
      if (thread && thread.id === frame.conversation_id && location.hash === `#/messages/${thread.id}`) {
        thread.handle(frame);
        return;
      }
      if (frame.type !== "message" || frame.message?.sender_id === me.id) return;
      if (!document.getElementById("main").dataset.typing) route(false);
      notice(`New message from ${frame.message?.sender_name ?? "a participant"}.`);
    },
    onCall: callFrame,
    onUnread: setUnread,
    onLive: (up) => {
      document.getElementById("nav").dataset.live = up ? "on" : "off";
      callSocket(up);
    },
  });
  await route();
}

// Homes by role -----------------------------------------------------------------------------

const redraw = () => route(false);

async function doctorHome() {
  const { from } = today();
  const [week, referrals] = await Promise.all([appointments({ doctor_id: me.id, ...today(7) }), inbox(me, redraw)]);
  const isToday = (a) => a.start.startsWith(from);
  return [
    h("h1", {}, "Doctor home"),
    section("My appointments today", appointmentTable(me, week.filter(isToday), redraw, ["patient"])),
    section("Referrals to me", referrals),
    section("Later this week", appointmentTable(me, week.filter((a) => !isToday(a)), redraw, ["patient"])),
  ];
}

async function secretaryHome() {
  const day = await appointments(today());
  return [h("h1", {}, "Secretary home"), section("Today's appointments", appointmentTable(me, day, redraw)), searchForm(), registerForm()];
}

async function patientHome() {
  let record;
  try {
    record = await get("/users/me/patient");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return [h("h1", {}, "Patient home"), h("p", {}, "No patient record is linked to your account yet. The clinic's secretaries link it.")];
    }
    throw error;
  }
  return recordPage(me, record.id, redraw, "Patient home");
}

async function adminHome() {
  return [h("h1", {}, "Administrator home"), await usersSection(me, redraw), searchForm()];
}

async function laboratoryHome() {
  return labQueuePage(me);
}

/** A patient's record; for a doctor who may read it, its prescriptions and lab orders after it. */
async function patientPage(id) {
  const record = await recordPage(me, id, redraw);
  const closed = [record].flat(Infinity).some((n) => n instanceof Element && n.matches("form[aria-label='Emergency access']"));
  if (me.role !== "doctor" || closed) return record;
  const [prescriptions, lab] = await Promise.all([patientPrescriptionsSection(me, id, redraw), patientLabSection(me, id)]);
  return [record, patientMessagesSection(me, id), prescriptions, lab];
}

const HOMES = {
  doctor: doctorHome,
  secretary: secretaryHome,
  patient: patientHome,
  admin: adminHome,
  laboratory: laboratoryHome,
};

/** Each role's sections: `[label, hash]`, after Home. */
const SECTIONS = {
  doctor: [["My patients", "#/patients"], ["Referrals", "#/referrals"], ["Lab orders", "#/lab-orders"], ["Messages", "#/messages"], ["My feedback", "#/feedback"]],
  secretary: [],
  patient: [["My results", "#/results"], ["My prescriptions", "#/prescriptions"], ["Messages", "#/messages"]],
  admin: [["Audit trail", "#/audit"], ["Emergency accesses", "#/emergency-accesses"], ["Feedback", "#/feedback"]],
  laboratory: [],
};

/** Where a notification leads, for the signed-in user: its lab order, its referral, or its patient's record. */
function target(n) {
  if (n.data.conversation_id) return `#/messages/${n.data.conversation_id}`;
  if (n.data.prescription_id && me.role === "patient") return `#/prescriptions/${n.data.prescription_id}`;
  if (n.data.lab_order_id && LAB_ROLES.includes(me.role)) return `#/lab-orders/${n.data.lab_order_id}`;
  if (n.data.referral_id && me.role === "doctor") return `#/referrals/${n.data.referral_id}`;
  if (n.data.patient_id && me.role !== "patient") return `#/patients/${n.data.patient_id}`;
  if (n.data.appointment_id || n.data.patient_id) return "#/";
  return null;
}

/** The notification's title, leading to what it is about; following it marks it read. */
function notificationLink(n) {
  const title = n.data.title ?? n.kind;
  const href = target(n);
  if (!href) return title;
  const link = h("a", { href }, title);
  if (!n.read_at) {
    link.addEventListener("click", () => post(`/notifications/${n.id}/read`).then(recount, (e) => notice(e.message, true)));
  }
  return link;
}

/** Asks the server for the unread count again (the socket tells of new notifications only). */
async function recount() {
  setUnread((await get("/notifications/unread-count")).unread);
}

async function notificationsPage() {
  const list = await get(`/notifications${query({ after: 0, limit: 500 })}`);
  const items = [...list.items].reverse();
  return [
    h("h1", {}, "Notifications"),
    action("Mark all read", async () => {
      await post("/notifications/read-all");
      await recount();
      await route();
    }),
    table(
      [
        ["When", (n) => clinicTime(n.created_at)],
        ["What", notificationLink],
        ["Read", (n) => (n.read_at ? "yes" : "no")],
      ],
      items,
      "No notifications.",
    ),
  ];
}

const ID = "([0-9a-f-]{36})";
const LAB_ROLES = ["doctor", "laboratory", "patient"];

/** The pages, by the URL fragment that names them, and the roles that have them. */
const ROUTES = [
  [/^#\/?$/, null, () => HOMES[me.role]()],
  [/^#\/notifications$/, null, notificationsPage],
  [new RegExp(`^#/patients/${ID}$`), null, patientPage],
  [/^#\/patients$/, ["doctor"], myPatientsPage],
  [/^#\/referrals$/, ["doctor"], () => referralsPage(me, redraw)],
  [new RegExp(`^#/referrals/new(?:/${ID})?$`), ["doctor"], (id) => sendReferralPage(me, id)],
  [new RegExp(`^#/referrals/${ID}$`), ["doctor"], (id) => referralPage(me, id, redraw)],
  [/^#\/lab-orders$/, ["doctor"], myLabOrdersPage],
  [new RegExp(`^#/lab-orders/${ID}$`), LAB_ROLES, (id) => labOrderPage(me, id, redraw)],
  [/^#\/results$/, ["patient"], myResultsPage],
  [/^#\/prescriptions$/, ["patient"], () => myPrescriptionsPage(me, redraw)],
  [/^#\/messages$/, ["doctor", "patient"], () => conversationsPage(me)],
  [/^#\/feedback$/, ["doctor"], () => myFeedbackPage(me)],
  [new RegExp(`^#/messages/${ID}$`), ["doctor", "patient"], (id) => conversationPage(me, id, listen, (frame) => live?.send(frame) ?? false)],
  [new RegExp(`^#/prescriptions/${ID}$`), ["doctor", "patient"], prescriptionPage],
  // Open to every role: the server says who may take part, and the page shows its refusal.
  [new RegExp(`^#/calls/${ID}$`), null, (id) => callPage(me, id, (frame) => live?.send(frame) ?? false)],
  [/^#\/audit$/, ["admin"], auditPage],
  [/^#\/emergency-accesses$/, ["admin"], emergencyAccessesPage],
  [/^#\/feedback$/, ["admin"], feedbackAdminPage],
];

/** Shows the page the URL names; `focus` moves focus to it (not when redrawn for news). */
async function route(focus = true) {
  if (!me) return;
  const hash = location.hash || "#/";
  // A call is not redrawn for news: that would hang up.
  if (!focus && callShown(hash)) return;
  // Any other page (or this one afresh) leaves the call shown, if any.
  endCall();
  const found = ROUTES.find(([pattern, roles]) => pattern.test(hash) && (!roles || roles.includes(me.role)));
  try {
    if (!found) {
      show(focus, h("h1", {}, "Page not found"), h("p", {}, "There is no such page. "), h("a", { href: "#/" }, "Go home"));
      return;
    }
    const [pattern, , page] = found;
    thread = null;
    show(focus, await page(...hash.match(pattern).slice(1)));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signInPage("Your session ended. Sign in again.");
    show(focus, h("h1", {}, "That could not be shown"), h("p", { class: "error" }, error.message), h("a", { href: "#/" }, "Go home"));
  }
}

window.addEventListener("hashchange", () => route());
document.addEventListener("DOMContentLoaded", async () => {
  const main = document.getElementById("main");
  main.addEventListener("input", () => {
    main.dataset.typing = "yes";
  });
  if (!hasSession()) return signInPage();
  try {
    await start();
  } catch {
    signInPage();
  }
});
