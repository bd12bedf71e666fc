// Panels of the main pane: your ID, the settings, adding a contact, the
// network view; and the dialogs (rename, confirm).

import { api } from './api.js';
import { h, svg, icon, shortID, groupID, copyText, toast, spinner } from './dom.js';
import { typingToggle } from './msgops.js';
import { profileCard } from './profile.js';
import { vaultCard } from './vault.js';

function panel(id, title, backBtn, ...body) {
  return h('section', { class: 'panel', id, 'aria-labelledby': id + '-title' },
    h('header', { class: 'panel-head' }, backBtn, h('h1', { id: id + '-title', text: title })),
    h('div', { class: 'panel-body' }, ...body));
}

// ---- your ID ----

export function showMe(pane, me, backBtn) {
  const qrBox = h('div', { class: 'qr', id: 'my-qr' }, spinner('Drawing QR code'));
  const copyBtn = h('button', { class: 'btn primary', type: 'button', id: 'copy-id' }, icon('copy'), h('span', { text: 'Copy ID' }));
  copyBtn.addEventListener('click', async () => {
    const ok = await copyText(me);
    toast(ok ? 'Your ID is copied.' : 'Could not copy: select the ID and copy it by hand.', ok ? '' : 'error');
  });
  pane.replaceChildren(panel('me-panel', 'Your ID', backBtn,
    h('div', { class: 'card id-card' },
      qrBox,
      h('p', { class: 'muted', text: 'Share your ID (or let someone scan the code) so they can add you. It is not secret.' }),
      h('p', { class: 'id-text mono', id: 'my-id', 'aria-label': 'Your account ID', 'data-id': me, text: groupID(me) }),
      h('div', { class: 'actions center' }, copyBtn))));
  drawQR(qrBox);
}

// ---- settings ----

// showSettings shows everything the user can set, in one panel: the
// profile, privacy, the extra cards (notifications), backup and recovery.
export function showSettings(pane, backBtn, ...extra) {
  pane.replaceChildren(panel('settings-panel', 'Settings', backBtn,
    profileCard(),
    privacyCard(),
    ...extra,
    vaultCard()));
}

// privacyCard holds the read receipts toggle (GET and PUT /api/v1/settings).
function privacyCard() {
  const box = h('input', { id: 'setting-read-receipts', type: 'checkbox', disabled: true, 'aria-describedby': 'setting-read-receipts-hint' });
  const hint = h('p', { class: 'hint', id: 'setting-read-receipts-hint',
    text: 'When on, your contacts see when you have read their messages. Off, chats you open are marked read on this device only. ' +
      'Receipts, read or delivered, leave batched and seconds to minutes late, so they do not tie your mailboxes together.' });
  const err = h('p', { class: 'error', id: 'settings-error', role: 'alert' });
  box.addEventListener('change', async () => {
    const want = box.checked;
    box.disabled = true;
    err.textContent = '';
    try {
      const st = await api('PUT', '/api/v1/settings', { read_receipts: want });
      box.checked = st.read_receipts;
      toast(st.read_receipts ? 'Read receipts are on.' : 'Read receipts are off.');
    } catch (e) {
      box.checked = !want;
      err.textContent = 'Could not save the setting: ' + e.message;
    } finally {
      box.disabled = false;
    }
  });
  api('GET', '/api/v1/settings').then((st) => {
    box.checked = st.read_receipts;
    box.disabled = false;
  }, (e) => { err.textContent = 'Could not read the settings: ' + e.message; });
  return h('div', { class: 'card', id: 'privacy-settings' },
    h('h2', { text: 'Privacy' }),
    h('div', { class: 'toggle' }, box, h('label', { for: 'setting-read-receipts', text: 'Send read receipts' })),
    hint, typingToggle(), err);
}

async function drawQR(box) {
  let q;
  try {
    q = await api('GET', '/api/v1/me/qr');
  } catch (e) {
    box.replaceChildren(h('p', { class: 'error', text: 'No QR code: ' + e.message }));
    return;
  }
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
  const s = svg('svg', { viewBox: `0 0 ${n} ${n}`, 'shape-rendering': 'crispEdges', role: 'img', 'aria-label': 'QR code of your account ID' });
  s.append(svg('rect', { width: n, height: n, fill: '#fff' }), svg('path', { d, fill: '#000' }));
  box.replaceChildren(s);
}

// ---- add a contact ----

export function showAddContact(pane, backBtn, onAdded) {
  const idIn = h('input', {
    id: 'contact-id', type: 'text', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false',
    placeholder: 'umbra1…', 'aria-describedby': 'contact-id-hint contact-id-error', required: true,
  });
  const nameIn = h('input', { id: 'contact-name', type: 'text', autocomplete: 'off', maxlength: 64, placeholder: 'e.g. Bob' });
  const err = h('p', { class: 'error', id: 'contact-id-error', role: 'alert', 'aria-live': 'assertive' });
  const okNote = h('p', { class: 'ok-note', id: 'contact-id-ok', hidden: true }, icon('check', 'inline'), ' This ID is valid.');
  const submit = h('button', { class: 'btn primary', id: 'add-contact', type: 'submit', text: 'Add contact' });
  const form = h('form', { class: 'card', id: 'add-contact-form', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'contact-id', text: 'Account ID' }), idIn,
      h('p', { class: 'hint', id: 'contact-id-hint', text: 'Paste the ID they shared with you. It starts with umbra1; a typo is caught by its checksum.' }),
      err, okNote),
    h('div', { class: 'field' },
      h('label', { for: 'contact-name', text: 'Name (optional, only you see it)' }), nameIn),
    h('div', { class: 'actions' }, submit));

  const setErr = (msg) => {
    err.textContent = msg ? plainIDError(msg) : '';
    idIn.setAttribute('aria-invalid', msg ? 'true' : 'false');
    okNote.hidden = true;
  };
  let checkTimer = 0;
  let seq = 0;
  const check = async () => {
    const v = idIn.value.trim();
    const mine = ++seq;
    if (!v) { setErr(''); return false; }
    try {
      await api('POST', '/api/v1/parse-id', { id: v });
      if (mine !== seq) return false;
      setErr('');
      okNote.hidden = false;
      return true;
    } catch (e) {
      if (mine === seq) setErr(e.message);
      return false;
    }
  };
  idIn.addEventListener('input', () => {
    clearTimeout(checkTimer);
    okNote.hidden = true;
    // check once the ID looks complete, not at every keystroke
    if (idIn.value.trim().length >= 64) checkTimer = setTimeout(check, 250);
    else if (err.textContent) setErr('');
  });
  idIn.addEventListener('blur', () => { if (idIn.value.trim()) check(); });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearTimeout(checkTimer);
    if (!idIn.value.trim()) { setErr('Type or paste an account ID.'); idIn.focus(); return; }
    submit.disabled = true;
    try {
      const c = await api('POST', '/api/v1/contacts', { id: idIn.value.trim(), name: nameIn.value.trim() });
      toast('Added ' + (c.name || shortID(c.id)) + '.');
      onAdded(c);
    } catch (e) {
      setErr(e.message);
      idIn.focus();
    } finally {
      submit.disabled = false;
    }
  });
  pane.replaceChildren(panel('add-panel', 'Add a contact', backBtn, form,
    h('p', { class: 'muted small center', text: 'Umbra has no directory: people share their IDs with each other, like a phone number but without one.' })));
  idIn.focus();
}

// plainIDError turns the daemon's parse error into plain words.
function plainIDError(msg) {
  const m = msg.replace(/^invalid account ID: /, '');
  if (/checksum/.test(m)) return 'This ID has a typo: its checksum does not match. Check each character, or ask for the ID again.';
  if (/starts with/.test(m)) return 'An account ID starts with "umbra1". Check that you pasted the whole ID.';
  if (/characters long/.test(m)) return 'This ID is not the right length: ' + m.replace(/^an account ID is /, 'an ID is ') + '.';
  if (/own account/.test(m)) return 'That is your own ID. Add the ID of the person you want to talk to.';
  return m.charAt(0).toUpperCase() + m.slice(1) + '.';
}

// ---- network ----

export function showNetwork(pane, backBtn) {
  const body = h('div', { class: 'net', id: 'network-view', 'aria-busy': 'true' },
    h('p', { class: 'busy' }, spinner('Probing your swarm'), h('span', { text: 'Checking your onion path and probing your swarm…' })));
  const refresh = h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Refresh network status', title: 'Refresh' }, icon('refresh'));
  const sec = panel('network-panel', 'Network', backBtn, body);
  sec.querySelector('.panel-head').append(refresh);
  pane.replaceChildren(sec);
  const load = async () => {
    refresh.disabled = true;
    body.setAttribute('aria-busy', 'true');
    try {
      renderNetwork(body, await api('GET', '/api/v1/network'));
    } catch (e) {
      body.replaceChildren(h('p', { class: 'error', role: 'alert', text: 'Could not read the network status: ' + e.message }));
    } finally {
      body.setAttribute('aria-busy', 'false');
      refresh.disabled = false;
    }
  };
  refresh.addEventListener('click', load);
  load();
}

const ROLE_TEXT = {
  guard: 'Knows your address, not what you ask for.',
  middle: 'Knows neither you nor your mailbox.',
  exit: 'Delivers the request; does not know who sent it.',
};

function renderNetwork(body, st) {
  const path = st.path || [];
  const swarm = st.swarm || [];
  const hop = (cls, role, title, sub, text) => h('li', { class: 'hop ' + cls, 'data-role': role },
    h('span', { class: 'hop-dot', 'aria-hidden': 'true' }),
    h('div', { class: 'hop-body' },
      h('strong', { class: 'hop-role', text: title }),
      sub ? h('span', { class: 'mono hop-id', text: sub }) : null,
      text ? h('span', { class: 'muted small', text }) : null));
  let pathCard;
  if (st.direct) {
    pathCard = h('p', { class: 'warning', text: 'This daemon talks to swarm nodes directly (--direct): no onion path is used, and the nodes see your address.' });
  } else if (path.length === 0) {
    pathCard = h('p', { class: 'error', text: 'No onion path right now: too few reachable nodes in distinct networks.' });
  } else {
    pathCard = h('ol', { class: 'path', id: 'onion-path', 'aria-label': 'Onion path, ' + path.length + ' hops' },
      hop('you', 'you', 'You', '', 'This device.'),
      path.map((n) => hop('node', n.role, cap(n.role), shortPeer(n.peer_id) + (n.addr ? ' · ' + hostOf(n.addr) : ''), ROLE_TEXT[n.role])),
      hop('dest', 'swarm', 'Your mailbox swarm', '', swarm.length + ' nodes keep copies of your messages.'));
  }
  const alive = st.swarm_alive || 0;
  const health = swarm.length === 0 ? 'bad' : alive === swarm.length ? 'good' : alive * 2 > swarm.length ? 'fair' : 'bad';
  const meter = h('div', { class: 'meter ' + health, role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': swarm.length, 'aria-valuenow': alive, 'aria-label': 'Swarm nodes answering' });
  const fill = h('span', { class: 'meter-fill' });
  fill.style.width = (swarm.length ? (100 * alive) / swarm.length : 0) + '%';
  meter.append(fill);
  body.replaceChildren(
    h('div', { class: 'card' },
      h('h2', { text: 'Onion path in use' }),
      h('p', { class: 'muted', text: 'Your requests are wrapped in three layers of encryption and relayed by three nodes. Each one peels a layer and learns only the next hop.' }),
      pathCard),
    h('div', { class: 'card' },
      h('h2', { text: 'Your mailbox swarm' }),
      h('p', { class: 'swarm-summary', id: 'swarm-summary' },
        h('strong', { text: alive + ' of ' + swarm.length }), ' nodes answer'),
      meter,
      h('ul', { class: 'swarm', id: 'swarm-list', 'aria-label': 'Swarm nodes' },
        swarm.map((n) => h('li', { class: 'swarm-node ' + (n.ok ? 'up' : 'down') },
          h('span', { class: 'node-state', role: 'img', 'aria-label': n.ok ? 'answers' : 'does not answer' }),
          h('span', { class: 'mono', text: shortPeer(n.peer_id) }),
          h('span', { class: 'muted small', text: n.addr ? hostOf(n.addr) : '' }),
          h('span', { class: 'small node-word', text: n.ok ? 'answers' : 'no answer' }))))),
    h('p', { class: 'muted small center', text: 'Known nodes in the network: ' + st.nodes }));
}

function cap(s) { return s.charAt(0).toUpperCase() + s.slice(1); }
function shortPeer(id) { return id && id.length > 14 ? id.slice(0, 6) + '…' + id.slice(-6) : id || ''; }
function hostOf(addr) {
  const p = addr.split('/');
  return p.length > 4 ? p[2] + ':' + p[4] : addr;
}

// ---- dialogs ----

export function dialog(title, content, okText, danger) {
  return new Promise((resolve) => {
    const ok = h('button', { class: 'btn ' + (danger ? 'danger' : 'primary'), type: 'submit', text: okText });
    const cancel = h('button', { class: 'btn ghost', type: 'button', text: 'Cancel' });
    const form = h('form', { novalidate: true }, h('h2', { id: 'dialog-title', text: title }), content, h('div', { class: 'actions' }, cancel, ok));
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'dialog-title' }, form);
    let result = null;
    form.addEventListener('submit', (ev) => { ev.preventDefault(); result = true; dlg.close(); });
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result ? form : null); });
    document.body.append(dlg);
    dlg.showModal();
    const first = form.querySelector('input') || ok;
    first.focus();
  });
}

// renameDialog asks for a contact's name; null means cancelled.
export async function renameDialog(current, who) {
  const input = h('input', { id: 'rename-input', type: 'text', maxlength: 64, autocomplete: 'off' });
  input.value = current;
  const form = await dialog('Rename ' + (current || who), h('div', { class: 'field' }, h('label', { for: 'rename-input', text: 'Name' }), input), 'Save');
  return form ? input.value.trim() : null;
}

// confirmDialog asks yes or no.
export async function confirmDialog(title, text, okText) {
  const form = await dialog(title, h('p', { class: 'muted', text }), okText, true);
  return form !== null;
}
