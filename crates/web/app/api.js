// The REST API, as the app uses it: the access token lives in memory only, the refresh token
// in sessionStorage (gone with the tab), and a 401 is answered once by refreshing the pair.

const REFRESH_KEY = "carehub.refresh";
let accessToken = null;
let accessExpiresAt = 0;
let refreshing = null;

/** An answer that was not 2xx, carrying its problem document (RFC 9457). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `The server answered ${status}.`);
    this.status = status;
    this.problem = problem || {};
  }

  /** Each invalid field's message, by field name (a 422's `errors`). */
  fieldErrors() {
    const out = {};
    for (const e of this.problem.errors || []) out[e.field] = e.message;
    return out;
  }
}

function keep(pair) {
  accessToken = pair.access_token;
  accessExpiresAt = Date.now() + pair.expires_in * 1000;
  sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
}

async function send(method, path, body, token, accept = "application/json") {
  const headers = { accept };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  if (response.status === 204) return null;
  const text = await response.text();
  if (response.ok && accept !== "application/json") return text;
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Signs in; the pair is kept for the calls that follow. */
export async function signIn(username, password) {
  keep(await send("POST", "/auth/login", { username, password }));
}

/** Whether a session can be resumed (a refresh token is kept in this tab). */
export function hasSession() {
  return accessToken !== null || sessionStorage.getItem(REFRESH_KEY) !== null;
}

/** Trades the kept refresh token for a new pair; one refresh at a time. */
export function refresh() {
  if (!refreshing) {
    const token = sessionStorage.getItem(REFRESH_KEY);
    refreshing = (async () => {
      try {
        if (!token) throw new ApiError(401, { title: "Signed out" });
        keep(await send("POST", "/auth/refresh", { refresh_token: token }));
      } catch (error) {
        forget();
        throw error;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

/** The current access token, refreshed first when there is none in memory. */
export async function token() {
  if (accessToken === null) await refresh();
  return accessToken;
}

/** When the access token in memory expires, in milliseconds since the epoch. */
export function accessExpiry() {
  return accessExpiresAt;
}

function forget() {
  accessToken = null;
  sessionStorage.removeItem(REFRESH_KEY);
}

/** Signs out on the server (revoking the session) and forgets the tokens here. */
export async function signOut() {
  const refreshToken = sessionStorage.getItem(REFRESH_KEY);
  try {
    if (accessToken) await send("POST", "/auth/logout", { refresh_token: refreshToken }, accessToken);
  } finally {
    forget();
  }
}

/**
 * An authenticated call; on a 401 the pair is refreshed and the call made once more. With
 * `accept` other than JSON, a 2xx answer is returned as text.
 */
export async function call(method, path, body, accept = undefined) {
  try {
    return await send(method, path, body, await token(), accept);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    await refresh();
    return send(method, path, body, accessToken, accept);
  }
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);
export const put = (path, body) => call("PUT", path, body);
export const patch = (path, body) => call("PATCH", path, body);
export const del = (path) => call("DELETE", path);
/** An HTML page of the API (a printable prescription), as text. */
export const getHtml = (path) => call("GET", path, undefined, "text/html");

/** A query string from the defined values of `params`. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * A call with the bearer token whose body is not JSON (a multipart upload) or whose answer is
 * not JSON (a file's bytes): the raw response when 2xx, else its problem as an `ApiError`. A 401
 * is answered once by refreshing the pair, as api.js does.
 */
export async function authorized(method, path, body) {
  const attempt = async () =>
    fetch(`/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${await token()}` },
      body,
      credentials: "omit",
      cache: "no-store",
    });
  let response = await attempt();
  if (response.status === 401) {
    await refresh();
    response = await attempt();
  }
  if (!response.ok) {
    const text = await response.text();
    let problem = null;
    try {
      problem = text ? JSON.parse(text) : null;
    } catch {
      problem = null;
    }
    throw new ApiError(response.status, problem);
  }
  return response;
}

/** Fetches a file with the bearer token and hands it to the browser as a download. */
export async function downloadFile(path, name) {
  const response = await authorized("GET", path);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.className = "download-link";
  link.textContent = name;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has read the object by then; it is freed after.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
