// Profiles (your name and avatar, contacts' ones) and disappearing
// messages: the pieces app.js and panels.js use.

import { api } from './api.js';
import { h, svg, avatar, shortID, toast } from './dom.js';

// stopwatch is the disappearing-messages icon (an SVG: emoji fonts are
// not everywhere).
function stopwatch(cls) {
  const el = svg('svg', { viewBox: '0 0 24 24', class: 'icon ' + (cls || ''), 'aria-hidden': 'true', focusable: 'false' });
  el.append(svg('path', { d: 'M12 21a8 8 0 1 0 0-16 8 8 0 0 0 0 16M12 9v4l2.5 2M9.5 2h5M19 5l1.5 1.5' }));
  return el;
}

// me is the user's own profile, as GET /api/v1/profile answers it.
export const me = { account_id: '', name: '', avatar: '' };
let onMeChange = () => {};

// loadMe reads the user's profile; then calls changed on every change.
export async function loadMe(id, changed) {
  me.account_id = id;
  onMeChange = changed || onMeChange;
  try {
    Object.assign(me, await api('GET', '/api/v1/profile'));
  } catch { /* the ID is enough to go on */ }
  onMeChange();
}

// displayName: the user's own name for a contact wins, then the name
// their profile gives, then their short ID.
export function displayName(c) {
  return (c && (c.name || c.profile_name)) || shortID(c && c.peer);
}

// avatarOf is a conversation's avatar: the contact's picture when their
// profile has one, else the coloured initial.
export function avatarOf(c, size) {
  return pictureOr(c.peer, c.avatar, displayName(c), size);
}

export function myAvatar(size) {
  return pictureOr(me.account_id, me.avatar, me.name || 'You', size);
}

function pictureOr(id, src, label, size) {
  if (src && src.startsWith('data:image/')) {
    return h('img', { class: 'avatar avatar-img' + (size ? ' avatar-' + size : ''), src, alt: '', 'aria-hidden': 'true', 'data-peer': id });
  }
  return avatar(id, label, size);
}

// setTitle names the account in the tab's title, so two tabs (two
// accounts) are told apart: "(2) Alice · Umbra".
export function setTitle(unread) {
  const who = me.name || shortID(me.account_id);
  document.title = (unread ? '(' + unread + ') ' : '') + (who ? who + ' · ' : '') + 'Umbra';
}

// ---- disappearing messages ----

// The choices the UI offers (the CLI and API take any 5 s to 4 weeks).
export const TIMERS = [[0, 'Off'], [300, '5 minutes'], [3600, '1 hour'], [86400, '1 day'], [604800, '1 week']];

// timerText names a timer: "off", "1 hour", "10 seconds" ...
export function timerText(secs) {
  if (!secs) return 'off';
  for (const [n, unit] of [[604800, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']]) {
    if (secs % n === 0) {
      const k = secs / n;
      return k + ' ' + unit + (k === 1 ? '' : 's');
    }
  }
  return secs + ' seconds';
}

// timerLine is the system line a timer change leaves in the chat.
export function timerLine(m, who) {
  const by = m.outgoing ? 'You' : who;
  const text = m.expire ? by + ' set disappearing messages to ' + timerText(m.expire) : by + ' turned off disappearing messages';
  return h('div', { class: 'sys-line', 'data-id': m.id, 'data-kind': 'timer', role: 'note' }, h('span', { text }));
}

// timerMark marks a message that disappears.
export function timerMark(m) {
  if (!m.expires_at) return null;
  const label = 'Disappears ' + new Date(m.expires_at).toLocaleString();
  return h('span', { class: 'timer-mark', title: label, 'aria-label': label, role: 'img' }, stopwatch());
}

// timerButton opens the timer choice for conversation c.
export function timerButton(c, dialog) {
  const label = 'Disappearing messages: ' + timerText(c.timer || 0);
  return h('button', {
    class: 'icon-btn timer-btn' + (c.timer ? ' on' : ''), type: 'button', id: 'timer-btn', 'aria-label': label, title: label,
    onclick: () => chooseTimer(c, dialog),
  }, stopwatch(), c.timer ? h('span', { class: 'timer-short', text: shortTimer(c.timer) }) : null);
}

function shortTimer(secs) {
  for (const [n, u] of [[604800, 'w'], [86400, 'd'], [3600, 'h'], [60, 'm'], [1, 's']]) {
    if (secs >= n && secs % n === 0) return secs / n + u;
  }
  return secs + 's';
}

async function chooseTimer(c, dialog) {
  const cur = c.timer || 0;
  const opts = TIMERS.some(([s]) => s === cur) ? TIMERS : [...TIMERS, [cur, timerText(cur)]];
  const radios = opts.map(([s, label]) => h('label', { class: 'radio' },
    h('input', { type: 'radio', name: 'timer', value: String(s), checked: s === cur, 'data-seconds': s }), ' ', label));
  const form = await dialog('Disappearing messages', h('fieldset', { class: 'timer-choice' },
    h('legend', { class: 'muted', text: 'New messages in this chat disappear from both devices this long after they are sent (yours) or arrive (theirs).' }),
    radios), 'Save');
  if (!form) return;
  const picked = form.querySelector('input[name=timer]:checked');
  const secs = picked ? Number(picked.value) : cur;
  if (secs === cur) return;
  try {
    await api('PUT', '/api/v1/conversations/' + encodeURIComponent(c.peer) + '/timer', { seconds: secs });
  } catch (e) { toast(e.message, 'error'); }
}

// ---- profile editing (the "me" panel) ----

// profileCard edits the user's name and avatar.
export function profileCard() {
  const name = h('input', { id: 'profile-name', type: 'text', maxlength: 64, autocomplete: 'nickname', value: me.name || '' });
  const file = h('input', { id: 'profile-avatar', type: 'file', accept: 'image/png,image/jpeg,image/gif' });
  const preview = h('span', { class: 'profile-preview' }, myAvatar('lg'));
  const err = h('p', { class: 'error', id: 'profile-error', role: 'alert' });
  const save = h('button', { class: 'btn primary', type: 'submit', id: 'profile-save', text: 'Save profile' });
  const clear = h('button', { class: 'btn ghost sm', type: 'button', id: 'profile-clear', text: 'Remove picture', hidden: !me.avatar });
  const put = async (body) => {
    err.textContent = '';
    save.disabled = true;
    try {
      Object.assign(me, { avatar: '' }, await api('PUT', '/api/v1/profile', body));
      preview.replaceChildren(myAvatar('lg'));
      clear.hidden = !me.avatar;
      file.value = '';
      onMeChange();
      toast('Profile saved. Contacts you write to see it.');
    } catch (e) {
      err.textContent = 'Could not save: ' + e.message;
    } finally {
      save.disabled = false;
    }
  };
  const form = h('form', { class: 'card', id: 'profile-card', novalidate: true },
    h('h2', { text: 'Profile' }),
    h('div', { class: 'profile-row' }, preview,
      h('div', { class: 'field grow' }, h('label', { for: 'profile-name', text: 'Your name' }), name)),
    h('div', { class: 'field' }, h('label', { for: 'profile-avatar', text: 'Picture' }), file,
      h('p', { class: 'hint', text: 'Scaled to 96×96 and re-encoded, so no photo metadata leaves this device.' })),
    h('p', { class: 'hint', text: 'Sent end-to-end encrypted to the contacts you write to. Their own name for you comes first on their side.' }),
    err, h('div', { class: 'actions' }, clear, save));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim() };
    if (file.files && file.files[0]) {
      try {
        body.avatar = await fileBase64(file.files[0]);
      } catch (e) {
        err.textContent = e.message;
        return;
      }
    }
    put(body);
  });
  clear.addEventListener('click', () => put({ clear_avatar: true }));
  return form;
}

function fileBase64(f) {
  if (f.size > 8 << 20) return Promise.reject(new Error('That picture is larger than 8 MiB.'));
  return f.arrayBuffer().then((buf) => {
    const b = new Uint8Array(buf);
    let s = '';
    for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
    return btoa(s);
  });
}
