// The daemon's local API. The page is opened at /#token=...: the fragment
// never reaches a server. The token is kept for this tab only
// (sessionStorage), taken out of the address bar, and sent as an
// Authorization header on every call and as a WebSocket subprotocol entry
// on the events stream. The daemon never reads it from a URL.

const KEY = 'umbra-token';

function readToken() {
  const t = new URLSearchParams(location.hash.slice(1)).get('token');
  if (t) {
    sessionStorage.setItem(KEY, t);
    // Keep the token out of the address bar, history and screenshots.
    history.replaceState(null, '', location.pathname);
    return t;
  }
  return sessionStorage.getItem(KEY) || '';
}

export const token = readToken();

// ApiError carries the daemon's message and HTTP status.
export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code || '';
  }
}

// api calls METHOD path with an optional JSON body and returns the JSON answer.
export async function api(method, path, body) {
  const opts = { method, headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch {
    throw new ApiError('The Umbra daemon does not answer. Is it still running?', 0);
  }
  let data = null;
  try { data = await resp.json(); } catch { data = null; }
  if (!resp.ok) {
    throw new ApiError((data && data.error) || ('The daemon answered ' + resp.status), resp.status, data && data.code);
  }
  return data;
}

// Events is the live event stream (GET /api/v1/events over a WebSocket),
// reconnecting with backoff. onEvent gets each event; onStatus gets
// 'online' or 'offline'.
export class Events {
  constructor(onEvent, onStatus) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.delay = 500;
    this.timer = 0;
    this.ws = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }

  connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/events';
    // Browsers cannot set headers on a WebSocket: the token travels as a
    // second subprotocol; the daemon selects the first, "umbra".
    const ws = new WebSocket(url, ['umbra', 'umbra.token.' + token]);
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 500;
      this.onStatus('online');
    };
    ws.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      this.onEvent(ev);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onStatus('offline');
      if (this.stopped) return;
      this.timer = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
  }
}
