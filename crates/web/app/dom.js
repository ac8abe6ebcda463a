// Building the page: elements are made with text content, never from HTML strings, so nothing
// the API returns is ever read as markup.

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

/** Replaces the main area with `nodes`; with `focus`, moves focus to it, for screen readers. */
export function show(focus, ...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.flat(Infinity));
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
 * An instant as the clinic's clocks show it. The API writes scheduling times at the clinic's
 * offset, so the wall time is the text itself: `2027-03-29 09:00`.
 */
export function clinicTime(rfc3339) {
  return rfc3339 ? rfc3339.slice(0, 16).replace("T", " ") : "";
}

/**
 * A labelled input `name` with a place for its error under it (`attrs` go to the input; a
 * `choices` array makes it a select of those values).
 */
export function field(label, name, attrs = {}, choices = null) {
  const errorId = `error-${name.replaceAll(".", "-")}`;
  const control = choices
    ? h("select", { name, "aria-describedby": errorId, ...attrs }, choices.map((c) => h("option", { value: c }, c)))
    : h("input", { name, "aria-describedby": errorId, ...attrs });
  return h("label", {}, label, control, h("span", { class: "field-error", id: errorId, "data-error-for": name }));
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
  (form.querySelector("[aria-invalid]") ?? alert).focus?.();
}
