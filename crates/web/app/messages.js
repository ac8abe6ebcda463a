// Messages: the caller's conversations with their unread counts, one conversation as a thread
// that grows live as messages arrive on the socket (and is marked read as it is seen), with
// who has read what; and, on a patient's page, a doctor's way to start one.

import { get, post, query } from "./api.js";
import { action, clinicTime, field, form, h, notice, section, table } from "./dom.js";

export const conversationHref = (c) => `#/messages/${c.id}`;

/** The other participants' names. */
function others(me, conversation) {
  const names = conversation.participants.filter((p) => p.id !== me.id).map((p) => p.full_name ?? "a former user");
  return names.join(", ") || "nobody else";
}

/** The caller's conversations, newest first. */
export async function conversationsPage(me) {
  const page = await get(`/conversations${query({ limit: 100 })}`);
  return [
    h("h1", {}, "Messages"),
    me.role === "doctor" ? h("p", {}, "Start a conversation from a patient's page.") : null,
    table(
      [
        ["With", (c) => h("a", { href: conversationHref(c) }, others(me, c))],
        ["About", (c) => (c.referral_id ? "a referral" : "care")],
        ["Last message", (c) => (c.last_message_at ? clinicTime(c.last_message_at) : "none yet")],
        ["Unread", (c) => (c.unread ? h("strong", { class: "unread" }, String(c.unread)) : "0")],
      ],
      page.items,
      "No conversations yet.",
    ),
  ];
}

function bubble(me, m) {
  const mine = m.sender_id === me.id;
  return h(
    "li",
    { class: `bubble ${mine ? "mine" : "theirs"}`, "data-message-id": m.id },
    h("p", { class: "meta" }, `${mine ? "You" : m.sender_name ?? "A former user"}, ${clinicTime(m.sent_at)}`),
    h("p", { class: "body" }, m.body),
  );
}

/**
 * One conversation: its messages oldest first, growing live; `listen(id, handler)` hands the
 * page the socket's message frames of this conversation.
 */
export async function conversationPage(me, id, listen) {
  const [conversation, page] = await Promise.all([get(`/conversations/${id}`), get(`/conversations/${id}/messages${query({ limit: 100 })}`)]);
  const thread = h("ol", { class: "thread", "aria-label": "Messages", "aria-live": "polite" });
  const receipt = h("p", { class: "receipt meta", "aria-live": "polite" });
  let lastMine = null;
  const readers = new Map(conversation.participants.filter((p) => p.id !== me.id).map((p) => [p.id, { name: p.full_name ?? "a former user", upto: p.last_read }]));
  const showReceipt = () => {
    const seen = lastMine ? [...readers.values()].filter((r) => r.upto && r.upto >= lastMine).map((r) => r.name) : [];
    receipt.textContent = seen.length ? `Your last message was seen by ${seen.join(", ")}.` : "";
  };
  const markRead = (m) => post(`/conversations/${id}/read`, { message_id: m.id }).catch(() => {});
  const add = (m) => {
    if (thread.querySelector(`[data-message-id="${CSS.escape(m.id)}"]`)) return;
    thread.append(bubble(me, m));
    if (m.sender_id === me.id) lastMine = m.id;
    showReceipt();
  };
  [...page.items].reverse().forEach(add);
  const newest = page.items[0];
  if (newest && newest.sender_id !== me.id) markRead(newest);
  listen(id, (frame) => {
    if (frame.type === "message" && frame.message) {
      add(frame.message);
      if (frame.message.sender_id !== me.id) markRead(frame.message);
    } else if (frame.type === "message_read" && readers.has(frame.reader_id)) {
      readers.get(frame.reader_id).upto = frame.message_id;
      showReceipt();
    }
  });
  const composer = form("Write a message", "Send", [field("Message", "body", { multiline: true, required: true, maxlength: "4000" })], async (data, element) => {
    const sent = await post(`/conversations/${id}/messages`, { body: String(data.get("body") ?? "").trim() });
    add(sent);
    element.reset();
    delete document.getElementById("main").dataset.typing;
  });
  return [
    h("h1", {}, `Conversation with ${others(me, conversation)}`),
    h("p", { class: "meta" }, conversation.referral_id ? "About a referral." : me.role === "patient" ? "About your care." : "About the patient's care."),
    thread,
    receipt,
    composer,
    h("p", {}, h("a", { href: "#/messages" }, "All conversations")),
  ];
}

/** A doctor's way, on a patient's page, to start a conversation with the patient. */
export function patientMessagesSection(me, patientId) {
  if (me.role !== "doctor") return null;
  return section(
    "Messages",
    action("Message the patient", async () => {
      const started = await post("/conversations", { patient_id: patientId, participant_ids: [] });
      notice("Conversation started.");
      location.hash = conversationHref(started);
    }, { class: "secondary" }),
  );
}
