// Video consultations: an appointment's call page. The camera and the microphone flow between
// the two browsers (or through the clinic's TURN server); CareHub only relays the signalling,
// over the socket the app keeps open: `call.join`, then `call.signal` frames carrying an SDP
// `{description}` or an ICE `{candidate}`, and `call.leave`. The peer connection follows the
// "perfect negotiation" pattern: the patient is the polite peer (yields when both offer at
// once), the doctor the impolite one.
//
// A join starts the call afresh on both sides: whoever is in the call already hears of it
// (`call.peer`, joined), drops any connection it had and offers; the one who joined makes its
// connection when the first signal arrives. A `call.peer` "joined" about a party the join
// already found present (`peer_present`) is the same news arriving late (docs/calls.md), not
// a new join. So each side has one connection per join, whatever the order in which the news
// arrives.

import { ApiError, get } from "./api.js";
import { clinicSpan, facts, h, notice } from "./dom.js";

/** The call page's address for an appointment. */
export const callHref = (appointmentId) => `#/calls/${appointmentId}`;

/** The statuses whose call may still be joined. */
const ACTIVE = ["booked", "checked_in", "in_progress"];

/** The call page shown, if one is. */
let current = null;

/** Hands a call frame from the socket to the call page shown, if it is about its call. */
export function callFrame(frame) {
  if (current && frame.appointment_id === current.id) current.receive(frame);
}

/** Tells the call page shown that the socket is ready (`up`) or closed. */
export function callSocket(up) {
  current?.socket(up);
}

/** Whether `hash` is the call page shown (which is never redrawn: that would hang up). */
export function callShown(hash) {
  return current !== null && current.hash === hash;
}

/** Leaves the call of the page shown, if any (leaving the page, signing out). */
export function endCall() {
  current?.end();
  current = null;
}

// Leaving the app (closing the tab, reloading) leaves the call too. The server would see the
// socket close, but a leave said first reaches the other party sooner.
window.addEventListener("pagehide", () => current?.end());

/**
 * An instant of the call's window (which the API gives in UTC) as a wall time at the clinic's
 * offset that `like` (one of the appointment's times) carries, written as `clinicTime` writes
 * scheduling times: `2027-03-29 08:50`, or `2027-03-29 06:50 UTC` in a clinic on UTC.
 */
function wallTime(instant, like) {
  const offset = /([+-])(\d\d):(\d\d)$/.exec(like);
  const minutes = offset ? (offset[1] === "-" ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3])) : 0;
  const wall = new Date(Date.parse(instant) + minutes * 60_000).toISOString().slice(0, 16).replace("T", " ");
  return offset ? wall : `${wall} UTC`;
}

/** "call refused: the appointment is cancelled" → "Call refused: the appointment is cancelled." */
function sentence(text) {
  const said = String(text ?? "").trim() || "the server refused";
  const first = said[0].toUpperCase() + said.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** A page for a call that cannot be shown: the server's reason, said as a refusal. */
function refusedPage(error) {
  return [
    h("h1", {}, "Video call"),
    h("p", { class: "error", role: "alert", id: "call-refusal" }, sentence(`Call refused: ${error.message}`)),
    h("p", {}, h("a", { href: "#/" }, "Go home")),
  ];
}

/**
 * The call of appointment `id`, for its doctor or its patient: its window, where the other
 * party stands, the two videos and the controls. `send(frame)` sends a frame on the socket,
 * and says whether it could.
 */
export async function callPage(me, id, send) {
  let info;
  let appointment;
  try {
    [info, appointment] = await Promise.all([get(`/appointments/${id}/call`), get(`/appointments/${id}`)]);
  } catch (error) {
    if (error instanceof ApiError && [403, 404, 409].includes(error.status)) return refusedPage(error);
    throw error;
  }
  const page = new CallPage(me, id, send, info, appointment);
  current?.end();
  current = page;
  return page.nodes();
}

class CallPage {
  constructor(me, id, send, info, appointment) {
    this.me = me;
    this.id = id;
    this.hash = callHref(id);
    this.send = send;
    this.info = info;
    this.polite = me.id !== info.doctor_id;
    this.peerId = this.polite ? info.doctor_id : info.patient_user_id;
    this.peerName = (this.polite ? appointment.doctor_name : appointment.patient_name) ?? (this.polite ? "The doctor" : "The patient");
    this.appointment = appointment;
    /** `idle`, `media` (asking for the camera), `joining`, `joined`. */
    this.state = "idle";
    this.local = null;
    this.peer = null;
    /** Whether the other party is in the call, as this side last heard while in it. */
    this.peerIn = false;
    this.timers = [];
    this.build();
    this.showWindow();
    const peerIn = this.peerId && info.present.includes(this.peerId);
    const peerLeft = this.peerId && info.events.some((e) => e.user_id === this.peerId && e.kind === "leave");
    this.showPeer(peerIn ? "joined" : peerLeft ? "left" : "waiting");
    this.showConnection("none");
    this.showControls();
    // The Join button follows the window as time passes (a timer lasts at most about 24 days).
    for (const at of [info.opens_at, info.closes_at]) {
      const due = Date.parse(at) - Date.now();
      if (due > 0 && due < 2 ** 31 - 1) this.timers.push(setTimeout(() => (this.showWindow(), this.showControls()), due + 100));
    }
  }

  build() {
    this.windowText = h("p", { id: "call-window" });
    this.peerText = h("p", { id: "call-peer", "aria-live": "polite" });
    this.connectionText = h("p", { id: "call-connection", class: "meta", "aria-live": "polite" });
    this.alert = h("p", { id: "call-error", class: "error", role: "alert" });
    this.remoteVideo = h("video", { id: "call-remote", autoplay: true, playsinline: true });
    this.localVideo = h("video", { id: "call-local", autoplay: true, playsinline: true });
    // Muted as a property too: the attribute alone is not always read by a video made here.
    this.localVideo.muted = true;
    this.joinButton = h("button", { type: "button", onclick: () => this.join() }, "Join the call");
    this.microphoneButton = h("button", { type: "button", class: "secondary", onclick: () => this.toggle("audio") }, "Mute microphone");
    this.cameraButton = h("button", { type: "button", class: "secondary", onclick: () => this.toggle("video") }, "Turn camera off");
    this.hangUpButton = h("button", { type: "button", class: "danger", onclick: () => this.hangUp("You left the call.") }, "Hang up");
    this.controls = h("div", { class: "controls call-controls" }, this.joinButton, this.microphoneButton, this.cameraButton, this.hangUpButton);
  }

  nodes() {
    const a = this.appointment;
    return [
      h("h1", {}, `Video call with ${this.peerName}`),
      facts([
        ["Appointment", clinicSpan(a.start, a.end)],
        ["Reason", a.reason],
        ["Can be joined", `${this.wall(this.info.opens_at)} – ${this.wall(this.info.closes_at)}`],
      ]),
      this.windowText,
      this.peerText,
      this.alert,
      this.controls,
      this.connectionText,
      h(
        "div",
        { class: "call-videos" },
        h("figure", { class: "call-remote" }, this.remoteVideo, h("figcaption", {}, this.peerName)),
        h("figure", { class: "call-local" }, this.localVideo, h("figcaption", {}, "You")),
      ),
      h("p", {}, h("a", { href: "#/" }, "Home")),
    ];
  }

  /** An instant of the window at the clinic's offset. */
  wall(instant) {
    return wallTime(instant, this.appointment.start);
  }

  /** `before`, `open` or `after` the call's window, by this computer's clock. */
  phase() {
    const now = Date.now();
    if (now < Date.parse(this.info.opens_at)) return "before";
    return now < Date.parse(this.info.closes_at) ? "open" : "after";
  }

  showWindow() {
    const phase = this.phase();
    const text = {
      before: `The call opens at ${this.wall(this.info.opens_at)}, ten minutes before the appointment.`,
      open: `The call is open until ${this.wall(this.info.closes_at)}.`,
      after: `The call closed at ${this.wall(this.info.closes_at)}.`,
    }[phase];
    this.windowText.textContent = ACTIVE.includes(this.appointment.status) ? text : `The appointment is ${this.appointment.status.replace("_", " ")}: its call cannot be joined.`;
    this.windowText.dataset.window = phase;
  }

  showPeer(status) {
    const name = this.peerName;
    const text = !this.peerId
      ? `${name} has no account yet, so cannot join.`
      : { waiting: `${name} has not joined yet.`, joined: `${name} is in the call.`, left: `${name} left the call.` }[status];
    this.peerText.textContent = text;
    this.peerText.dataset.peerStatus = status;
  }

  showConnection(state) {
    const said = {
      none: "Not connected.",
      new: "Connecting…",
      connecting: "Connecting…",
      connected: `Connected to ${this.peerName}.`,
      disconnected: "The connection is interrupted; trying again…",
      failed: "The connection failed.",
      closed: "Not connected.",
    };
    this.connectionText.textContent = said[state] ?? state;
    this.connectionText.dataset.connectionState = state;
    if (state === "connected") performance.mark("carehub:call-connected");
  }

  showControls() {
    // For tests and measures: where this side stands (`idle`, `media`, `joining`, `joined`).
    this.controls.dataset.callState = this.state;
    const inCall = this.state !== "idle";
    const joinable = this.phase() === "open" && ACTIVE.includes(this.appointment.status) && Boolean(this.peerId);
    this.joinButton.hidden = inCall;
    this.joinButton.disabled = !joinable;
    for (const button of [this.microphoneButton, this.cameraButton, this.hangUpButton]) button.hidden = !inCall;
    const track = (kind) => this.local?.getTracks().find((t) => t.kind === kind);
    const microphone = track("audio");
    const camera = track("video");
    this.microphoneButton.textContent = microphone && !microphone.enabled ? "Unmute microphone" : "Mute microphone";
    this.microphoneButton.disabled = !microphone;
    this.cameraButton.textContent = camera && !camera.enabled ? "Turn camera on" : "Turn camera off";
    this.cameraButton.disabled = !camera;
  }

  refuse(text) {
    this.alert.textContent = sentence(text);
  }

  /** Asks for the camera and the microphone, then joins the call over the socket. */
  async join() {
    if (this.state !== "idle") return;
    // For measuring (the benchmark's `call` phase): the click, the server's answer, connected.
    performance.mark("carehub:call-join");
    this.alert.textContent = "";
    this.state = "media";
    this.showControls();
    // The Join button is gone: keyboard focus goes to the call's controls.
    this.hangUpButton.focus();
    try {
      // Fresh ICE servers: TURN credentials are handed out only while the call is open.
      this.info = await get(`/appointments/${this.id}/call`);
      this.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    } catch (error) {
      this.stop();
      const why = error instanceof ApiError ? error.message : error?.name === "NotAllowedError" ? "the camera and the microphone were not allowed" : "no camera or microphone could be used";
      this.refuse(`Could not join: ${why}`);
      return;
    }
    if (this.state !== "media") {
      // Hung up, or the page left, while the browser asked.
      this.local.getTracks().forEach((t) => t.stop());
      this.local = null;
      return;
    }
    this.localVideo.srcObject = this.local;
    this.state = "joining";
    this.showControls();
    if (!this.sendJoin()) this.connectionText.textContent = "Waiting for the connection to CareHub…";
  }

  sendJoin() {
    return this.send({ type: "call.join", appointment_id: this.id });
  }

  /** Mutes or unmutes the microphone (`audio`), turns the camera (`video`) off or on. */
  toggle(kind) {
    for (const track of this.local?.getTracks() ?? []) {
      if (track.kind === kind) track.enabled = !track.enabled;
    }
    this.showControls();
  }

  /** Leaves the call: the server and the other party are told, the camera is released. */
  hangUp(said) {
    if (this.state === "joining" || this.state === "joined") this.send({ type: "call.leave", appointment_id: this.id });
    this.stop();
    if (said) notice(said);
  }

  /** Ends this page's call for good (the page is left). */
  end() {
    this.hangUp(null);
    this.timers.forEach(clearTimeout);
  }

  /** Back to before joining: no connection, no camera. */
  stop() {
    this.state = "idle";
    this.closePeer();
    this.local?.getTracks().forEach((t) => t.stop());
    this.local = null;
    this.localVideo.srcObject = null;
    this.showControls();
    // Keyboard focus goes back to the Join button, unless the page is gone.
    if (this.joinButton.isConnected) this.joinButton.focus();
  }

  closePeer() {
    if (this.peer) {
      this.peer.pc.close();
      this.peer = null;
    }
    this.remoteVideo.srcObject = null;
    this.showConnection("none");
  }

  /** The socket is ready again (`up`), or closed: the server left the call for us then. */
  socket(up) {
    if (!up) {
      if (this.state === "joined") {
        this.state = "joining";
        this.closePeer();
        this.showControls();
        this.connectionText.textContent = "The connection to CareHub was lost; joining again when it is back…";
      }
      return;
    }
    if (this.state === "joining") this.sendJoin();
  }

  receive(frame) {
    switch (frame.type) {
      case "call.joined":
        if (this.state !== "joining") return;
        this.state = "joined";
        performance.mark("carehub:call-joined");
        // A join starts afresh: the other party, if in the call, offers a new connection.
        this.closePeer();
        this.peerIn = frame.peer_present;
        this.showPeer(frame.peer_present ? "joined" : "waiting");
        this.showControls();
        notice(frame.peer_present ? `You joined the call; ${this.peerName} is in it.` : `You joined the call; waiting for ${this.peerName}.`);
        break;
      case "call.left":
        break;
      case "call.peer":
        if (frame.user_id !== this.peerId) return;
        // The join `call.joined` already told of: the same news.
        if (this.state === "joined" && frame.status === "joined" && this.peerIn) return;
        this.showPeer(frame.status);
        notice(frame.status === "joined" ? `${this.peerName} joined the call.` : `${this.peerName} left the call.`);
        if (this.state !== "joined") return;
        this.peerIn = frame.status === "joined";
        this.closePeer();
        if (this.peerIn) this.connect();
        break;
      case "call.signal":
        if (this.state !== "joined" || frame.from !== this.peerId || !frame.data) return;
        if (!this.peer) this.connect();
        this.peer.receive(frame.data);
        break;
      case "error":
        this.refuse(frame.message);
        // A refused join: nothing to stay for. A refused signal leaves the call as it is.
        if (this.state === "joining") this.stop();
        break;
      default:
        break;
    }
  }

  /** A new peer connection to the other party, with the camera and microphone on it. */
  connect() {
    const signal = (data) => this.send({ type: "call.signal", appointment_id: this.id, data });
    const peer = negotiate({
      iceServers: this.info.ice_servers,
      polite: this.polite,
      stream: this.local,
      signal,
      onTrack: (stream) => {
        if (this.remoteVideo.srcObject !== stream) this.remoteVideo.srcObject = stream;
      },
      onState: (state) => {
        if (this.peer === peer) this.showConnection(state);
      },
    });
    this.peer = peer;
    this.showConnection(peer.pc.connectionState);
  }
}

/**
 * A peer connection that negotiates itself ("perfect negotiation"): it offers when it needs
 * to, and when both sides offer at once the polite one rolls back and answers while the
 * impolite one ignores the other's offer. `signal(data)` sends `{description}` or
 * `{candidate}` to the other side; `receive(data)` takes theirs, one at a time, in order.
 */
function negotiate({ iceServers, polite, stream, signal, onTrack, onState }) {
  const pc = new RTCPeerConnection({ iceServers });
  let makingOffer = false;
  let ignoreOffer = false;
  let queue = Promise.resolve();
  const remote = new MediaStream();
  for (const track of stream?.getTracks() ?? []) pc.addTrack(track, stream);
  pc.addEventListener("track", ({ track, streams }) => {
    onTrack(streams[0] ?? (remote.addTrack(track), remote));
  });
  pc.addEventListener("icecandidate", ({ candidate }) => {
    if (candidate) signal({ candidate: candidate.toJSON() });
  });
  pc.addEventListener("negotiationneeded", async () => {
    try {
      makingOffer = true;
      await pc.setLocalDescription();
      signal({ description: pc.localDescription.toJSON() });
    } catch (error) {
      console.warn("call: an offer could not be made", error);
    } finally {
      makingOffer = false;
    }
  });
  pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));

  async function handle({ description, candidate }) {
    if (pc.signalingState === "closed") return;
    if (description) {
      const collision = description.type === "offer" && (makingOffer || pc.signalingState !== "stable");
      ignoreOffer = !polite && collision;
      if (ignoreOffer) return;
      await pc.setRemoteDescription(description);
      if (description.type === "offer") {
        await pc.setLocalDescription();
        signal({ description: pc.localDescription.toJSON() });
      }
    } else if (candidate) {
      try {
        await pc.addIceCandidate(candidate);
      } catch (error) {
        // A candidate of an offer ignored in a collision fails, and does not matter.
        if (!ignoreOffer) throw error;
      }
    }
  }

  return {
    pc,
    receive(data) {
      queue = queue.then(() => handle(data)).catch((error) => console.warn("call: a signal could not be used", error));
    },
  };
}
