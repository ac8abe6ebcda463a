// Building the page: elements are made with text content, never from HTML strings, so nothing
// the API returns is ever read as markup. The one exception is the printable prescription
// (prescriptions.js): the server's own page, every value escaped there, parsed inert.

/** An element `tag` with `attrs` (on* keys become listeners) and children (strings or nodes). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replaces the children of `element` with `children`, taken as `h` takes them. */
export function refill(element, ...children) {
  element.replaceChildren(...h("div", {}, children).childNodes);
}

/** Replaces the main area with `nodes`; with `focus`, moves focus to it, for screen readers. */
export function show(focus, ...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined));
  // Set by typing into the page (see main.js); a page being filled in is not redrawn for news.
  delete main.dataset.typing;
  // For measuring: when each page was shown, after the page load (the benchmark's `page` phase).
  performance.mark("carehub:shown");
  if (focus) main.focus();
}

/** Says `text` in the live region (an error when `error` is true). */
export function notice(text, error = false) {
  const region = document.getElementById("notice");
  region.textContent = text;
  region.classList.toggle("error", error);
}

/** A table of `rows` with `columns` ([heading, row => cell]), or `empty` when there are none. */
export function table(columns, rows, empty) {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, columns.map(([heading]) => h("th", { scope: "col" }, heading)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))),
  );
}

/**
 * An instant as the API wrote it, to the minute. Scheduling times come at the clinic's offset,
 * so the wall time is the text itself: `2027-03-29 09:00`. Other instants (when a note was
 * written, an audit event, a notification) come in UTC, and say so: `2027-03-29 07:00 UTC`.
 */
export function clinicTime(rfc3339) {
  if (!rfc3339) return "";
  const wall = rfc3339.slice(0, 16).replace("T", " ");
  return rfc3339.endsWith("Z") ? `${wall} UTC` : wall;
}

/** A span of time on one day: `2027-03-29 09:00 – 09:30`. */
export function clinicSpan(start, end) {
  const zone = end.endsWith("Z") ? " UTC" : "";
  return `${start.slice(0, 16).replace("T", " ")} – ${end.slice(11, 16)}${zone}`;
}

/**
 * A labelled input `name` with a place for its error under it (`attrs` go to the input; a
 * `choices` array makes it a select of those values, `[value, label]` pairs or plain values;
 * `attrs.multiline` makes it a textarea). `attrs.value` fills it in.
 */
export function field(label, name, attrs = {}, choices = null) {
  const errorId = `error-${name.replace(/[^A-Za-z0-9_-]/g, "-")}`;
  const { multiline, value, ...rest } = attrs;
  const common = { name, "aria-describedby": errorId, ...rest };
  let control;
  if (choices) {
    const options = choices.map((c) => (Array.isArray(c) ? c : [c, c]));
    control = h("select", common, options.map(([v, text]) => h("option", { value: v, selected: v === (value ?? "") }, text)));
  } else if (multiline) {
    control = h("textarea", { rows: "4", ...common }, value ?? "");
  } else {
    control = h("input", { ...common, value: value ?? undefined });
  }
  return h("label", {}, label, control, h("span", { class: "field-error", id: errorId, "data-error-for": name }));
}

/**
 * A form whose submission calls `submit(data, form)`; whatever it throws is shown on the form
 * (see `showErrors`), and the button is disabled while it runs.
 */
export function form(label, button, children, submit) {
  const element = h(
    "form",
    { class: "stack", "aria-label": label, novalidate: true },
    children,
    h("button", { type: "submit" }, button),
    h("p", { class: "error", role: "alert", tabindex: "-1" }),
  );
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    showErrors(element, null);
    const control = element.querySelector("button[type=submit]");
    control.disabled = true;
    try {
      await submit(new FormData(element), element);
    } catch (error) {
      showErrors(element, error);
    } finally {
      control.disabled = false;
    }
  });
  return element;
}

/** A button that runs `act`; a refusal is said in the notice area as a plain sentence. */
export function action(label, act, attrs = {}) {
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await act();
    } catch (error) {
      notice(error.message, true);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/**
 * A JSON body from a form's named values, nested by their names (`contact.email`,
 * `identifiers[0].value`). Empty values are left out, or with `clear` sent as `null` (for a
 * merge patch); an object or list left with nothing in it goes the same way. Names in `lists`
 * are textareas holding one item per line.
 */
export function formBody(data, { clear = false, lists = [] } = {}) {
  const root = {};
  for (const [name, raw] of data.entries()) {
    const text = String(raw).trim();
    const value = lists.includes(name) ? text.split("\n").map((l) => l.trim()).filter(Boolean) : text;
    const keys = name.split(/[.[\]]+/).filter(Boolean);
    let node = root;
    keys.slice(0, -1).forEach((key, i) => {
      node[key] ??= /^\d+$/.test(keys[i + 1]) ? [] : {};
      node = node[key];
    });
    node[keys.at(-1)] = value;
  }
  const prune = (value) => {
    if (Array.isArray(value)) {
      const items = value.map(prune).filter((v) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0));
      return items.length ? items : null;
    }
    if (typeof value === "object" && value !== null) {
      const entries = Object.entries(value).map(([k, v]) => [k, prune(v)]);
      if (entries.every(([, v]) => v === null)) return null;
      return Object.fromEntries(entries.filter(([, v]) => clear || v !== null));
    }
    return value === "" ? null : value;
  };
  return prune(root) ?? {};
}

/** A titled section of a page. */
export function section(title, ...children) {
  const id = `section-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), children);
}

/** A term and description list of `[term, value]` pairs, leaving out empty values. */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(([, value]) => value !== undefined && value !== null && value !== "").map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

/**
 * Shows a refusal on `form`: each field's message next to its input (a 422's `errors`), and
 * whatever has no input of its own, or any other refusal, as a sentence in the form's alert.
 */
export function showErrors(form, error) {
  const alert = form.querySelector("[role=alert]");
  for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  alert.textContent = "";
  if (!error) return;
  const fields = typeof error.fieldErrors === "function" ? error.fieldErrors() : {};
  const unplaced = [];
  for (const [name, message] of Object.entries(fields)) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (slot) {
      slot.textContent = message;
      form.querySelector(`[name="${CSS.escape(name)}"]`)?.setAttribute("aria-invalid", "true");
    } else {
      unplaced.push(`${name}: ${message}`);
    }
  }
  alert.textContent = unplaced.length || Object.keys(fields).length === 0 ? [error.message, ...unplaced].join(" ") : "Please correct the fields marked.";
  // A booking refused for the time: each appointment in the way.
  const conflicts = error.problem?.conflicts ?? [];
  if (conflicts.length) {
    alert.append(h("ul", { class: "conflicts" }, conflicts.map((c) => h("li", {}, `${clinicSpan(c.start, c.end)}, in the ${c.with === "patient" ? "patient's" : "doctor's"} calendar`))));
  }
  // A prescription refused for the patient's allergies: each recorded allergy it matches.
  const matches = error.problem?.allergy_matches ?? [];
  if (matches.length) {
    alert.append(h("ul", { class: "conflicts" }, matches.map((m) => h("li", {}, m.drug_class ? `${m.substance} (both are ${m.drug_class})` : m.substance))));
  }
  (form.querySelector("[aria-invalid]") ?? alert).focus?.();
}
