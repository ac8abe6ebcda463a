// Administration: accounts (approve, suspend, reactivate), the audit trail with its filters,
// and the emergency accesses doctors took. Care teams are on each patient's page.

import { get, patch, post, query } from "./api.js";
import { action, clinicTime, field, form, formBody, h, notice, refill, section, table } from "./dom.js";

export const ROLE_NAMES = {
  admin: "Administrator",
  secretary: "Secretary",
  doctor: "Doctor",
  laboratory: "Laboratory",
  patient: "Patient",
};

function accountActions(me, u, done) {
  if (u.id === me.id) return "";
  const set = (status, said) => async () => {
    await patch(`/admin/users/${u.id}`, { status });
    await done();
    notice(`${u.full_name} is ${said}.`);
  };
  const about = (verb) => ({ "aria-label": `${verb} ${u.full_name} (${u.username})` });
  if (u.status === "pending") {
    return action("Approve", async () => {
      await post(`/admin/users/${u.id}/approve`);
      await done();
      notice(`${u.full_name} is approved.`);
    }, about("Approve"));
  }
  if (u.status === "active") return action("Suspend", set("suspended", "suspended"), { class: "secondary", ...about("Suspend") });
  return action("Reactivate", set("active", "active again"), about("Reactivate"));
}

/** The accounts, filtered by role and status, with what an administrator may do to each. */
export async function usersSection(me, done, filter = {}) {
  const page = await get(`/admin/users${query({ limit: 100, ...filter })}`);
  const filters = form("Filter users", "Filter", [
    field("Role", "role", { value: filter.role ?? "" }, [["", "Any role"], ...Object.entries(ROLE_NAMES)]),
    field("Status", "status", { value: filter.status ?? "" }, [["", "Any status"], "pending", "active", "suspended"]),
  ], async (data) => {
    const chosen = formBody(data);
    const list = await usersSection(me, done, chosen);
    filters.closest("section").replaceWith(list);
  });
  filters.classList.add("inline");
  return section(
    "Users",
    filters,
    table(
      [
        ["Username", (u) => u.username],
        ["Name", (u) => u.full_name],
        ["Role", (u) => ROLE_NAMES[u.role] ?? u.role],
        ["Status", (u) => u.status],
        ["Actions", (u) => accountActions(me, u, done)],
      ],
      page.items,
      "No users.",
    ),
  );
}

/** `YYYY-MM-DD` from a date input as the start of that day here, in RFC 3339. */
function dayStart(value, plusDays = 0) {
  if (!value) return undefined;
  const day = new Date(`${value}T00:00:00`);
  day.setDate(day.getDate() + plusDays);
  return day.toISOString();
}

/** The audit trail, newest first, filtered by patient, user and days, a page at a time. */
export async function auditPage() {
  const users = (await get(`/admin/users${query({ limit: 100 })}`)).items;
  const results = h("div", { "aria-live": "polite" });
  let filter = {};
  const show = async (cursor) => {
    const page = await get(`/admin/audit${query({ ...filter, cursor, limit: 50 })}`);
    const more = page.next_cursor ? action("Next page", () => show(page.next_cursor)) : null;
    refill(results, 
      table(
        [
          ["When", (e) => clinicTime(e.at)],
          ["Who", (e) => `${e.actor.full_name ?? "a former user"} (${e.actor.role})`],
          ["What", (e) => e.action],
          ["Patient", (e) => (e.patient_id ? h("a", { href: `#/patients/${e.patient_id}` }, "care team") : "")],
          ["Outcome", (e) => e.outcome],
          ["Basis", (e) => (e.basis ?? "").replaceAll("_", " ")],
        ],
        page.items,
        "No events match.",
      ),
      more,
    );
  };
  const filters = form("Filter the audit trail", "Show events", [
    field("User", "user_id", {}, [["", "Anyone"], ...users.map((u) => [u.id, `${u.full_name} (${u.username})`])]),
    field("Patient id", "patient_id", { autocomplete: "off" }),
    field("From day", "from", { type: "date" }),
    field("To day (inclusive)", "to", { type: "date" }),
  ], async (data) => {
    const chosen = formBody(data);
    filter = { ...chosen, from: dayStart(chosen.from), to: dayStart(chosen.to, 1) };
    await show();
  });
  await show();
  return [h("h1", {}, "Audit trail"), filters, results];
}

export async function emergencyAccessesPage() {
  const page = await get(`/admin/emergency-accesses${query({ limit: 100 })}`);
  return [
    h("h1", {}, "Emergency accesses"),
    table(
      [
        ["Granted", (a) => clinicTime(a.granted_at)],
        ["Doctor", (a) => a.doctor.full_name ?? ""],
        ["Reason", (a) => a.reason],
        ["Until", (a) => clinicTime(a.expires_at)],
        ["Active", (a) => (a.active ? "yes" : "no")],
        ["Patient", (a) => h("a", { href: `#/patients/${a.patient_id}` }, "care team and access log")],
      ],
      page.items,
      "No emergency access was taken.",
    ),
  ];
}
