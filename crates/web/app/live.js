// The notification hub, live: a socket opened with a one-time ticket, resumed with `after` so
// nothing is missed across reconnects, moved onto each new access token before the old expires.

import { accessExpiry, get, post, refresh, token } from "./api.js";

const RETRY_MAX_MS = 10_000;

/**
 * Keeps a socket open while signed in. `onNotification(n)` is called once per notification the
 * socket delivers (replayed or live), `onMessage(frame)` once per message event (`message`,
 * `message_read`), `onCall(frame)` once per frame of a video call (`call.*`, and the `error`
 * refusing a call frame), `onUnread(count)` whenever the unread count may change, `onLive(up)`
 * when the socket is ready (replay done) and when it closes.
 * Returns `close()`, which closes it for good, and `send(frame)`, which sends a frame on the
 * socket when it is ready and says whether it could.
 */
export function connect({ onNotification, onMessage, onCall, onUnread, onLive }) {
  let socket = null;
  let ready = false;
  let lastId = null;
  let stopped = false;
  let retryMs = 500;
  let renewTimer = null;

  async function unread() {
    try {
      onUnread((await get("/notifications/unread-count")).unread);
    } catch {
      // The count shows again with the next notification or reconnect.
    }
  }

  async function open() {
    if (stopped) return;
    let ticket;
    try {
      ticket = (await post("/ws/tickets")).ticket;
    } catch {
      return retry();
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const after = lastId === null ? "" : `&after=${lastId}`;
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws?ticket=${encodeURIComponent(ticket)}${after}`);
    socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      ready = false;
      clearTimeout(renewTimer);
      onLive(false);
      if (!stopped) retry();
    });
    scheduleRenewal(accessExpiry());
  }

  function retry() {
    if (stopped) return;
    setTimeout(open, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  }

  // The socket is bound to the access token its ticket came from: a minute before that token
  // expires, refresh the pair and move the socket onto the new token.
  function scheduleRenewal(expiresAt) {
    clearTimeout(renewTimer);
    const due = expiresAt - Date.now() - 60_000;
    renewTimer = setTimeout(async () => {
      try {
        await refresh();
        socket?.send(JSON.stringify({ type: "auth", token: await token() }));
      } catch {
        socket?.close();
      }
    }, Math.max(due, 5_000));
  }

  function receive(frame) {
    switch (frame.type) {
      case "notification":
        lastId = Math.max(lastId ?? 0, frame.notification.id);
        onNotification(frame.notification);
        unread();
        break;
      case "message":
      case "message_read":
        lastId = Math.max(lastId ?? 0, frame.id);
        onMessage(frame);
        break;
      case "typing":
        // Relayed as it happens: no id, nothing to resume from.
        onMessage(frame);
        break;
      case "call.joined":
      case "call.left":
      case "call.peer":
      case "call.signal":
        onCall(frame);
        break;
      case "error":
        if (frame.appointment_id) onCall(frame);
        break;
      case "ready":
        ready = true;
        lastId = frame.last_id;
        retryMs = 500;
        onLive(true);
        unread();
        break;
      case "auth_ok":
        scheduleRenewal(Date.parse(frame.expires_at));
        break;
      case "read":
        unread();
        break;
      default:
        break;
    }
  }

  open();
  return {
    close() {
      stopped = true;
      clearTimeout(renewTimer);
      socket?.close();
    },
    send(frame) {
      if (!ready || socket?.readyState !== WebSocket.OPEN) return false;
      socket.send(JSON.stringify(frame));
      return true;
    },
  };
}
