// Messages: the caller's conversations with their unread counts, and a patient's way to write
// to a doctor of theirs; one conversation as a thread that grows live as messages arrive on the
// socket (and is marked read as it is seen), with who has read what, who is typing, and files
// sent with the messages; and, on a patient's page, a doctor's way to start one.

import { ApiError, authorized, downloadFile, get, post, query } from "./api.js";
import { action, clinicTime, field, form, h, notice, section, table } from "./dom.js";

/** How often, at most, the socket is told that the user is typing. */
const TYPING_EVERY_MS = 3000;
/** How long "… is typing" stays without another word from the socket. */
const TYPING_SHOWN_MS = 6000;
/** The files a message may carry, as the server accepts them. */
const FILE_TYPES = ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg";
const MAX_FILES = 5;

export const conversationHref = (c) => `#/messages/${c.id}`;

/** The other participants' names. */
function others(me, conversation) {
  const names = conversation.participants.filter((p) => p.id !== me.id).map((p) => p.full_name ?? "a former user");
  return names.join(", ") || "nobody else";
}

/**
 * A patient's form to write to one of their doctors: those of their appointments (the server
 * says if one is no longer on their care team).
 */
async function writeToDoctor() {
  let record;
  try {
    record = await get("/users/me/patient");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return h("p", {}, "Your account is not linked to a patient record yet: the clinic's desk links it.");
    throw error;
  }
  const visits = (await get(`/appointments${query({ limit: 100 })}`)).items;
  const doctors = new Map(visits.map((a) => [a.doctor_id, a.doctor_name ?? "a doctor"]));
  if (!doctors.size) return h("p", {}, "Once you have an appointment, you can write to its doctor here.");
  return form("Write to a doctor", "Start the conversation", [field("Doctor", "doctor_id", {}, [...doctors])], async (data) => {
    const started = await post("/conversations", { patient_id: record.id, participant_ids: [String(data.get("doctor_id"))] });
    notice("Conversation started.");
    location.hash = conversationHref(started);
  });
}

/** The caller's conversations, newest first. */
export async function conversationsPage(me) {
  const page = await get(`/conversations${query({ limit: 100 })}`);
  return [
    h("h1", {}, "Messages"),
    me.role === "doctor" ? h("p", {}, "Start a conversation from a patient's page.") : null,
    me.role === "patient" ? section("Write to a doctor", await writeToDoctor()) : null,
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

/** A file of a message: a button that downloads it. */
function attachmentLink(file) {
  const kb = Math.max(1, Math.round(file.size / 1024));
  return h("li", {}, action(`${file.name} (${kb} KB)`, async () => {
    await downloadFile(file.href.replace(/^\/api\/v1/, ""), file.name);
    notice(`Downloaded ${file.name}.`);
  }, { class: "secondary attachment", "aria-label": `Download ${file.name} (${kb} KB)` }));
}

function bubble(me, m) {
  const mine = m.sender_id === me.id;
  return h(
    "li",
    { class: `bubble ${mine ? "mine" : "theirs"}`, "data-message-id": m.id },
    h("p", { class: "meta" }, `${mine ? "You" : m.sender_name ?? "A former user"}, ${clinicTime(m.sent_at)}`),
    h("p", { class: "body" }, m.body),
    m.attachments?.length ? h("ul", { class: "attachments", "aria-label": "Files" }, m.attachments.map(attachmentLink)) : null,
  );
}

/** Uploads each chosen file to the conversation; returns their ids, in order. */
async function uploadAll(id, files) {
  if (files.length > MAX_FILES) throw new ApiError(422, { title: "Too many files", errors: [{ field: "files", message: `at most ${MAX_FILES} files per message` }] });
  const ids = [];
  for (const file of files) {
    const body = new FormData();
    body.append("file", file, file.name);
    try {
      ids.push((await (await authorized("POST", `/conversations/${id}/attachments`, body)).json()).id);
    } catch (error) {
      // The server names the part `file`; the form's control is `files`.
      if (error instanceof ApiError && error.problem.errors) {
        error.problem.errors = error.problem.errors.map((e) => ({ ...e, field: e.field === "file" ? "files" : e.field }));
      }
      throw error;
    }
  }
  return ids;
}

/**
 * One conversation: its messages oldest first, growing live; `listen(id, handler)` hands the
 * page the socket's frames of this conversation (messages, read marks, typing), and
 * `send(frame)` sends one on the socket (that the user is typing).
 */
export async function conversationPage(me, id, listen, send = () => false) {
  const [conversation, page] = await Promise.all([get(`/conversations/${id}`), get(`/conversations/${id}/messages${query({ limit: 100 })}`)]);
  const thread = h("ol", { class: "thread", "aria-label": "Messages", "aria-live": "polite" });
  const receipt = h("p", { class: "receipt meta", "aria-live": "polite" });
  const typing = h("p", { class: "typing meta", "aria-live": "polite" });
  const typists = new Map();
  const showTyping = () => {
    const names = [...typists.keys()];
    typing.textContent = names.length ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…` : "";
  };
  const stopTyping = (name) => {
    clearTimeout(typists.get(name));
    typists.delete(name);
    showTyping();
  };
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
      if (frame.message.sender_id !== me.id) {
        markRead(frame.message);
        stopTyping(readers.get(frame.message.sender_id)?.name);
      }
    } else if (frame.type === "message_read" && readers.has(frame.reader_id)) {
      readers.get(frame.reader_id).upto = frame.message_id;
      showReceipt();
    } else if (frame.type === "typing" && readers.has(frame.user_id)) {
      const name = readers.get(frame.user_id).name;
      clearTimeout(typists.get(name));
      typists.set(name, setTimeout(() => stopTyping(name), TYPING_SHOWN_MS));
      showTyping();
    }
  });
  const composer = form("Write a message", "Send", [
    field("Message", "body", { multiline: true, required: true, maxlength: "4000" }),
    field(`Files (PDF, PNG or JPEG; up to ${MAX_FILES})`, "files", { type: "file", multiple: true, accept: FILE_TYPES }),
  ], async (data, element) => {
    const body = String(data.get("body") ?? "").trim();
    if (!body) throw new ApiError(422, { title: "The message is empty", errors: [{ field: "body", message: "write something to go with it" }] });
    const files = data.getAll("files").filter((f) => f instanceof File && f.size > 0);
    const attachment_ids = await uploadAll(id, files);
    const sent = await post(`/conversations/${id}/messages`, attachment_ids.length ? { body, attachment_ids } : { body });
    add(sent);
    element.reset();
    delete document.getElementById("main").dataset.typing;
  });
  let lastTyping = 0;
  composer.querySelector("textarea").addEventListener("input", () => {
    const now = Date.now();
    if (now - lastTyping >= TYPING_EVERY_MS && send({ type: "typing", conversation_id: id }) !== false) lastTyping = now;
  });
  return [
    h("h1", {}, `Conversation with ${others(me, conversation)}`),
    h("p", { class: "meta" }, conversation.referral_id ? "About a referral." : me.role === "patient" ? "About your care." : "About the patient's care."),
    thread,
    receipt,
    typing,
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
