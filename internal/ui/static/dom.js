// DOM helpers, icons and formatting. Everything the page shows is built
// with h(): text is always set as text, never parsed as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h(tag, attrs, ...children) makes an element. attrs: class, text, on*
// handlers (onclick: fn), boolean attributes (true/false) and strings.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// svg(tag, attrs, ...children) makes an SVG element.
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

// Icon paths (24x24, stroked).
const ICONS = {
  plus: 'M12 5v14M5 12h14',
  addUser: 'M15 19v-1a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v1M8.5 10a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7M19 8v6M22 11h-6',
  qr: 'M4 4h6v6H4zM14 4h6v6h-6zM4 14h6v6H4zM14 14h2v2h-2zM18 14h2M14 18h2v2M18 18h2v2h-2',
  network: 'M12 5a2 2 0 1 0 0-4 2 2 0 0 0 0 4M5 23a2 2 0 1 0 0-4 2 2 0 0 0 0 4M19 23a2 2 0 1 0 0-4 2 2 0 0 0 0 4M12 5v6M12 11l-6 8M12 11l6 8',
  back: 'M15 18l-6-6 6-6',
  send: 'M22 2L11 13M22 2l-7 20-4-9-9-4z',
  edit: 'M12 20h9M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z',
  trash: 'M3 6h18M8 6V4h8v2M19 6l-1 14H6L5 6M10 11v6M14 11v6',
  copy: 'M9 9h11v11H9zM5 15H4V4h11v1',
  refresh: 'M23 4v6h-6M1 20v-6h6M3.5 9a9 9 0 0 1 14.9-3.4L23 10M1 14l4.6 4.4A9 9 0 0 0 20.5 15',
  shield: 'M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10',
  check: 'M20 6L9 17l-5-5',
  x: 'M18 6L6 18M6 6l12 12',
  lock: 'M5 11h14v10H5zM8 11V7a4 4 0 0 1 8 0v4',
  user: 'M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2M12 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8',
  key: 'M21 2l-2 2m-7.6 7.6a5.5 5.5 0 1 1-7.8 7.8 5.5 5.5 0 0 1 7.8-7.8zm0 0L15.5 7.5m0 0l3 3L22 7l-3-3m-3.5 3.5L19 4',
  chat: 'M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z',
  settings: 'M4 21v-7M4 10V3M12 21v-9M12 8V3M20 21v-5M20 12V3M1 14h6M9 8h6M17 16h6',
  search: 'M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16M21 21l-4.35-4.35',
};

// icon(name) is a decorative icon (hidden from screen readers: the
// control around it carries the label).
export function icon(name, cls) {
  const el = svg('svg', { viewBox: '0 0 24 24', class: 'icon' + (cls ? ' ' + cls : ''), 'aria-hidden': 'true', focusable: 'false' });
  el.append(svg('path', { d: ICONS[name] || '' }));
  return el;
}

// Tick shows an outgoing message's state.
const TICKS = {
  queued: { label: 'Queued: not sent yet', d: 'M12 7v5l3 2M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18' },
  sent: { label: 'Sent: stored by the network', d: 'M5 12.5l4.5 4.5L19 7' },
  delivered: { label: 'Delivered', d: 'M2 12.5l4.5 4.5L16 7M10 16l1 1 9.5-10' },
  read: { label: 'Read', d: 'M2 12.5l4.5 4.5L16 7M10 16l1 1 9.5-10' },
  failed: { label: 'Not sent', d: 'M12 8v5M12 16.5v.5M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18' },
};

export function tick(state) {
  const t = TICKS[state] || TICKS.queued;
  const el = h('span', { class: 'tick tick-' + state, 'data-state': state, role: 'img', 'aria-label': t.label, title: t.label });
  const s = svg('svg', { viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false' });
  s.append(svg('path', { d: t.d }));
  el.append(s);
  return el;
}

// shortID shortens an account ID for display: umbra1abcd…wxyz.
export function shortID(id) {
  if (!id || id.length < 20) return id || '';
  return id.slice(0, 10) + '…' + id.slice(-4);
}

// groupID splits an ID into groups of 4 characters for reading aloud.
export function groupID(id) {
  const body = id.slice(6);
  const parts = ['umbra1'];
  for (let i = 0; i < body.length; i += 4) parts.push(body.slice(i, i + 4));
  return parts.join(' ');
}

function hash(s) {
  let x = 2166136261;
  for (let i = 0; i < s.length; i++) { x ^= s.charCodeAt(i); x = Math.imul(x, 16777619); }
  return x >>> 0;
}

// avatar is a coloured circle with the name's initial.
export function avatar(id, name, size) {
  const label = (name || '').trim();
  const initial = label ? Array.from(label)[0].toUpperCase() : (id || '?').charAt(6).toUpperCase();
  return h('span', { class: 'avatar hue-' + (hash(id || '') % 8) + (size ? ' avatar-' + size : ''), 'aria-hidden': 'true', text: initial });
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const longDayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function startOfDay(d) { const x = new Date(d); x.setHours(0, 0, 0, 0); return x.getTime(); }

export function timeOf(ts) { return timeFmt.format(new Date(ts)); }
export function fullTime(ts) { return fullFmt.format(new Date(ts)); }

// listTime: the time today, the weekday this week, else the date.
export function listTime(ts) {
  const d = new Date(ts);
  const days = (startOfDay(Date.now()) - startOfDay(d)) / 86400000;
  if (days < 1) return timeFmt.format(d);
  if (days < 7) return dayFmt.format(d);
  return dateFmt.format(d);
}

// dayLabel names a day for the separators in a chat.
export function dayLabel(ts) {
  const days = Math.round((startOfDay(Date.now()) - startOfDay(ts)) / 86400000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  return longDayFmt.format(new Date(ts));
}

export function dayKey(ts) { return startOfDay(ts); }

// toast shows a short status message (read out by screen readers).
let toastTimer = 0;
export function toast(text, kind) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.className = 'toast show' + (kind ? ' ' + kind : '');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = 'toast'; }, 3500);
}

// copyText copies to the clipboard, falling back to a selected textarea.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h('textarea', { class: 'sr-only', 'aria-hidden': 'true' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    ta.remove();
    return ok;
  }
}

// spinner is a small busy indicator.
export function spinner(label) {
  return h('span', { class: 'spinner', role: 'status', 'aria-label': label || 'Loading' });
}
