// Trust in the web app: the chat header menu (verify, mute, delete chat,
// block, remove contact), the safety number screen, verified badges, the
// session-reset notice in a conversation, and browser notifications.

import { api } from './api.js';
import { h, svg, shortID, toast } from './dom.js';
import { confirmDialog } from './panels.js';

const enc = encodeURIComponent;

// Icons of this file (24x24, stroked like dom.js's).
const PATHS = {
  more: 'M12 6.5v.01M12 12v.01M12 17.5v.01',
  verified: 'M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10zM8.5 12l2.5 2.5 4.5-5',
  bellOff: 'M13.7 21a2 2 0 0 1-3.4 0M18.6 13A17.9 17.9 0 0 1 18 8M6.3 6.3A6 6 0 0 0 6 8c0 7-3 9-3 9h14M18 8a6 6 0 0 0-9.3-5M1 1l22 22',
  bell: 'M18 8A6 6 0 0 0 6 8c0 7-3 9-3 9h18s-3-2-3-9M13.7 21a2 2 0 0 1-3.4 0',
  block: 'M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20zM4.9 4.9l14.2 14.2',
  trash: 'M3 6h18M8 6V4h8v2M19 6l-1 14H6L5 6M10 11v6M14 11v6',
  userX: 'M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2M8.5 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8M18 8l5 5M23 8l-5 5',
  warn: 'M10.3 3.9L1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0zM12 9v4M12 17v.01',
};

function ticon(name, cls) {
  const el = svg('svg', { viewBox: '0 0 24 24', class: 'icon' + (cls ? ' ' + cls : ''), 'aria-hidden': 'true', focusable: 'false' });
  el.append(svg('path', { d: PATHS[name] || '' }));
  return el;
}

// verifiedBadge marks a contact whose safety number the user verified.
export function verifiedBadge() {
  return h('span', { class: 'verified-badge', role: 'img', 'aria-label': 'Verified', title: 'Safety number verified' }, ticon('verified'));
}

// mutedMark marks a muted conversation in the list.
export function mutedMark() {
  return h('span', { class: 'muted-mark', role: 'img', 'aria-label': 'Muted', title: 'Muted: no notifications' }, ticon('bellOff'));
}

// ---- the chat header menu ----

let openMenu = null; // {peer, close} of the open menu

// chatMenu is the "Conversation options" button of the chat header and
// its menu. c is the conversation ({peer, name, state, muted, verified});
// on(action) is called after an action succeeded ('verify' opens the
// safety number screen instead).
export function chatMenu(c, on) {
  const who = c.name || shortID(c.peer);
  const blocked = c.state === 'blocked';
  const isContact = c.state === 'contact';
  const items = [];
  const item = (id, iconName, label, run, danger) => {
    const b = h('button', { class: 'menu-item' + (danger ? ' danger' : ''), type: 'button', role: 'menuitem', 'data-action': id },
      ticon(iconName), h('span', { text: label }));
    b.addEventListener('click', () => { close(); run(); });
    items.push(b);
  };
  if (!blocked) item('verify', 'verified', 'Verify safety number', () => on('verify'));
  if (isContact) {
    item(c.muted ? 'unmute' : 'mute', c.muted ? 'bell' : 'bellOff', c.muted ? 'Unmute' : 'Mute', () => setMuted(c, who, !c.muted, on));
  }
  item('delete-chat', 'trash', 'Delete chat', () => deleteChat(c, who, on), true);
  item(blocked ? 'unblock' : 'block', 'block', blocked ? 'Unblock' : 'Block', () => (blocked ? unblock(c, who, on) : block(c, who, on)), !blocked);
  if (isContact) item('remove-contact', 'userX', 'Remove contact', () => removeContact(c, who, on), true);

  const menu = h('div', { class: 'menu', id: 'chat-menu', role: 'menu', 'aria-label': 'Conversation options', hidden: true }, items);
  const btn = h('button', {
    class: 'icon-btn', type: 'button', id: 'chat-menu-btn', 'aria-label': 'Conversation options', title: 'Options',
    'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': 'chat-menu',
  }, ticon('more'));
  const wrap = h('div', { class: 'menu-wrap' }, btn, menu);
  function open(focus) {
    menu.hidden = false;
    btn.setAttribute('aria-expanded', 'true');
    openMenu = { peer: c.peer, close };
    if (focus) items[0].focus();
    setTimeout(() => document.addEventListener('click', outside), 0);
  }
  function close() {
    menu.hidden = true;
    btn.setAttribute('aria-expanded', 'false');
    document.removeEventListener('click', outside);
    if (openMenu && openMenu.close === close) openMenu = null;
  }
  function outside(ev) { if (!wrap.contains(ev.target)) close(); }
  btn.addEventListener('click', () => (menu.hidden ? open(true) : close()));
  menu.addEventListener('keydown', (ev) => {
    const i = items.indexOf(document.activeElement);
    if (ev.key === 'Escape') { ev.stopPropagation(); close(); btn.focus(); }
    else if (ev.key === 'ArrowDown') { ev.preventDefault(); items[(i + 1) % items.length].focus(); }
    else if (ev.key === 'ArrowUp') { ev.preventDefault(); items[(i - 1 + items.length) % items.length].focus(); }
  });
  // The header is redrawn on every change (an event): a menu open for the
  // same chat stays open.
  if (openMenu && openMenu.peer === c.peer) {
    openMenu.close();
    open(false);
  }
  return wrap;
}

async function act(title, text, okText, call, done, on, action) {
  if (!(await confirmDialog(title, text, okText))) return;
  try {
    await call();
    toast(done);
    on(action);
  } catch (e) { toast(e.message, 'error'); }
}

function setMuted(c, who, muted, on) {
  return act(muted ? 'Mute ' + who + '?' : 'Unmute ' + who + '?',
    muted ? 'No notifications for this chat. Messages still arrive and show as unread.'
      : 'Notifications for new messages from ' + who + ' come back (when notifications are on in Your ID).',
    muted ? 'Mute' : 'Unmute',
    () => api('PUT', '/api/v1/contacts/' + enc(c.peer) + '/muted', { muted }),
    muted ? 'Muted ' + who + '.' : 'Unmuted ' + who + '.', on, muted ? 'mute' : 'unmute');
}

function deleteChat(c, who, on) {
  return act('Delete the chat with ' + who + '?',
    'Every message of this chat is deleted from this device. ' + who + ' keeps their copy and stays in your contacts; new messages arrive as before. This cannot be undone.',
    'Delete chat',
    () => api('DELETE', '/api/v1/conversations/' + enc(c.peer)),
    'Chat with ' + who + ' deleted.', on, 'delete-chat');
}

function block(c, who, on) {
  return act('Block ' + who + '?',
    'Their messages are dropped from now on and you cannot write to them. They are not told. The chat so far stays; you can unblock them later.',
    'Block',
    () => api('POST', '/api/v1/contacts/' + enc(c.peer) + '/block'),
    'Blocked ' + who + '.', on, 'block');
}

function unblock(c, who, on) {
  return act('Unblock ' + who + '?',
    'Their new messages arrive again. What they sent while blocked was dropped and does not come back.',
    'Unblock',
    () => api('POST', '/api/v1/contacts/' + enc(c.peer) + '/unblock'),
    'Unblocked ' + who + '.', on, 'unblock');
}

function removeContact(c, who, on) {
  return act('Remove ' + who + ' from your contacts?',
    'They leave your contacts; the chat stays on this device (use "Delete chat" to delete it). If they write again, it arrives as a message request.',
    'Remove contact',
    () => api('DELETE', '/api/v1/contacts/' + enc(c.peer)),
    'Removed ' + who + '.', on, 'remove-contact');
}

// ---- the safety number screen ----

// showVerify shows the safety number with peer in pane: the 60 digits,
// their QR code and the "Mark as verified" toggle. onChange runs after the
// mark changed.
export async function showVerify(pane, peer, backBtn, onChange) {
  const body = h('div', { class: 'panel-body' }, h('p', { class: 'busy' }, h('span', { class: 'spinner', role: 'status', 'aria-label': 'Loading' }), ' Computing the safety number…'));
  pane.replaceChildren(h('section', { class: 'panel', id: 'verify-panel', 'aria-labelledby': 'verify-panel-title' },
    h('header', { class: 'panel-head' }, backBtn, h('h1', { id: 'verify-panel-title', text: 'Verify safety number' })), body));
  let sn;
  try {
    sn = await api('GET', '/api/v1/contacts/' + enc(peer) + '/safety-number');
  } catch (e) {
    body.replaceChildren(h('p', { class: 'error', role: 'alert', text: 'No safety number: ' + e.message }));
    return;
  }
  const who = sn.name || shortID(peer);
  const box = h('input', { id: 'verified-toggle', type: 'checkbox', 'aria-describedby': 'verified-hint' });
  box.checked = sn.verified;
  const state = h('p', { class: 'verify-state', id: 'verify-state' });
  const showState = () => {
    state.replaceChildren(...(box.checked
      ? [verifiedBadge(), ' You verified ' + who + '.']
      : ['Not verified yet.']));
  };
  showState();
  box.addEventListener('change', async () => {
    const want = box.checked;
    box.disabled = true;
    try {
      await api('PUT', '/api/v1/contacts/' + enc(peer) + '/verified', { verified: want });
      toast(want ? who + ' is marked verified.' : 'Verified mark removed.');
      onChange();
    } catch (e) {
      box.checked = !want;
      toast(e.message, 'error');
    } finally {
      box.disabled = false;
      showState();
    }
  });
  const rows = [];
  for (let i = 0; i < sn.groups.length; i += 4) rows.push(h('div', { class: 'sn-row' }, sn.groups.slice(i, i + 4).map((g) => h('span', { text: g }))));
  body.replaceChildren(
    h('div', { class: 'card id-card' },
      h('div', { class: 'qr', id: 'safety-qr' }, qrSVG(sn.qr, 'QR code of the safety number')),
      h('div', { class: 'safety-number mono', id: 'safety-number', 'data-number': sn.number, 'aria-label': 'Safety number ' + sn.groups.join(' ') }, rows),
      h('p', { class: 'muted', text: 'Compare these 60 digits with ' + who + ', in person or on a call where you know their voice. ' +
        'They see the same number on their device. If it matches, nobody in the middle swapped their account ID.' }),
      h('div', { class: 'toggle' }, box, h('label', { for: 'verified-toggle', text: 'Mark as verified' })),
      h('p', { class: 'hint', id: 'verified-hint', text: 'Shows a verified badge next to ' + who + "'s name. Only you see it." }),
      state),
    h('div', { class: 'card subtle' },
      h('h2', { text: 'When does the number change?' }),
      h('p', { class: 'muted', text: 'Never for the same contact: it is computed from both account IDs, and an account ID is its identity key. ' +
        'If ' + who + ' reinstalls Umbra or restores their account, the chat shows that their session was reset; the number stays the same. ' +
        'Someone with a different key has a different account ID: a different contact.' })));
}

// qrSVG draws a QR matrix ({size, rows}) as an SVG.
function qrSVG(q, label) {
  const quiet = 4;
  const n = q.size + 2 * quiet;
  let d = '';
  q.rows.forEach((row, y) => {
    for (let x = 0; x < row.length; x++) {
      if (row[x] !== '1') continue;
      let end = x;
      while (end < row.length && row[end] === '1') end++;
      d += `M${x + quiet} ${y + quiet}h${end - x}v1h-${end - x}z`;
      x = end;
    }
  });
  const s = svg('svg', { viewBox: `0 0 ${n} ${n}`, 'shape-rendering': 'crispEdges', role: 'img', 'aria-label': label });
  s.append(svg('rect', { width: n, height: n, fill: '#fff' }), svg('path', { d, fill: '#000' }));
  return s;
}

// ---- notices and banners in a conversation ----

// noticeEl shows a line the daemon wrote into a conversation (a session
// reset), with a button to the safety number.
export function noticeEl(m, name, onVerify) {
  const text = m.notice === 'session_reset'
    ? name + "'s session was reset — verify the safety number"
    : m.text;
  return h('div', { class: 'chat-notice', role: 'note', 'data-id': m.id, 'data-notice': m.notice, title: m.text },
    ticon('warn', 'inline'), h('span', { text: text }),
    m.notice === 'session_reset' ? h('button', { class: 'btn link sm', type: 'button', onclick: onVerify, text: 'Verify' }) : null);
}

// blockedBanner sits under the header of a blocked account's chat.
export function blockedBanner(c, on) {
  const who = c.name || shortID(c.peer);
  return h('div', { class: 'request-banner blocked-banner', role: 'region', 'aria-label': 'Blocked' },
    h('p', { text: 'You blocked ' + who + '. Their messages are dropped and you cannot write to them.' }),
    h('div', { class: 'request-actions' },
      h('button', { class: 'btn primary sm', type: 'button', id: 'unblock-btn', onclick: () => unblock(c, who, on), text: 'Unblock' })));
}

// ---- browser notifications ----

const NOTIFY_OFF = 'umbra-notify-off';

function notifyOn() {
  return 'Notification' in window && Notification.permission === 'granted' && localStorage.getItem(NOTIFY_OFF) !== '1';
}

// notifyIncoming shows a browser notification for the incoming message m
// when the tab is hidden or another chat is open, unless the conversation
// is muted or notifications are off. conv is its conversation (if known),
// open the peer of the open chat, show(peer) opens a chat.
export function notifyIncoming(m, conv, open, show) {
  if (m.outgoing || m.notice || !notifyOn()) return;
  if (conv && (conv.muted || conv.state === 'blocked')) return;
  if (!document.hidden && open === m.from) return;
  const title = conv && conv.name ? conv.name : (conv && conv.state === 'contact' ? shortID(m.from) : 'Message request');
  const text = m.text.length > 200 ? m.text.slice(0, 199) + '…' : m.text;
  try {
    const n = new Notification(title, { body: text, tag: 'umbra-' + m.from, icon: 'icon.svg' });
    n.onclick = () => { window.focus(); show(m.from); n.close(); };
  } catch {
    // Some browsers allow notifications only from a service worker.
  }
}

// notificationCard is the settings card that asks for the permission (on
// a click, never on load) and turns notifications off and on.
export function notificationCard() {
  const status = h('p', { class: 'hint', id: 'notify-status' });
  const btn = h('button', { class: 'btn ghost sm', type: 'button', id: 'notify-btn' });
  const render = () => {
    if (!('Notification' in window)) {
      status.textContent = 'This browser does not offer notifications.';
      btn.hidden = true;
      return;
    }
    const p = Notification.permission;
    btn.hidden = false;
    if (p === 'denied') {
      status.textContent = 'Notifications are blocked for this page: allow them in the browser\'s site settings.';
      btn.hidden = true;
    } else if (p === 'granted' && localStorage.getItem(NOTIFY_OFF) !== '1') {
      status.textContent = 'On: a new message shows a notification with the sender\'s name and the text when this tab is in the background or another chat is open. Muted chats never do.';
      btn.textContent = 'Turn off notifications';
    } else {
      status.textContent = 'Off. Notifications show the sender\'s name and the message text on this computer\'s screen.';
      btn.textContent = 'Turn on notifications';
    }
  };
  btn.addEventListener('click', async () => {
    if (notifyOn()) {
      localStorage.setItem(NOTIFY_OFF, '1');
    } else {
      localStorage.removeItem(NOTIFY_OFF);
      if (Notification.permission !== 'granted') {
        try { await Notification.requestPermission(); } catch { /* answered below */ }
      }
      toast(Notification.permission === 'granted' ? 'Notifications are on.' : 'Notifications were not allowed.');
    }
    render();
  });
  render();
  return h('div', { class: 'card', id: 'notify-settings' },
    h('h2', { text: 'Notifications' }), status, h('div', { class: 'actions' }, btn));
}

