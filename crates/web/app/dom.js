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
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replaces the main area with `nodes`; with `focus`, moves focus to it, for screen readers. */
export function show(focus, ...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.flat());
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
