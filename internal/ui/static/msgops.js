// Conversation actions in the chat: reply (quote), reactions, edit,
// delete (for me, or for everyone) and typing indicators. app.js builds
// each message with decorate() and wires the composer with Composer.

import { api } from './api.js';
import { h, toast } from './dom.js';
import { fileLabel } from './files.js';

// The reactions the picker offers.
export const PICKS = ['👍', '❤️', '😂', '😮', '😢', '🙏'];

// firstLine is a message's first line, cut short.
function firstLine(text) {
  const line = (text || '').split('\n')[0];
  return line.length > 80 ? line.slice(0, 79) + '…' : line;
}

// quoteEl shows the message m quotes (author and first line), from the
// conversation's messages ms.
export function quoteEl(m, ms, nameOf, onClick) {
  if (!m.reply_to) return null;
  const q = ms.find((x) => x.id === m.reply_to);
  const who = !q ? '' : q.outgoing ? 'You' : nameOf(q.from);
  const text = !q ? 'Original message not found' : q.deleted ? 'This message was deleted' : firstLine(q.text || fileLabel(q));
  return h('button', {
    class: 'quote', type: 'button', 'data-quote': m.reply_to, title: 'Show the quoted message',
    onclick: () => q && onClick(q.id),
  }, who ? h('span', { class: 'quote-who', text: who }) : null, h('span', { class: 'quote-text', text }));
}

// reactionsEl shows m's reactions under the bubble, one chip per emoji
// with its count; our own chip takes ours back when clicked.
export function reactionsEl(m, me, nameOf, peer) {
  const rs = Object.entries(m.reactions || {});
  if (rs.length === 0) return null;
  const by = new Map();
  for (const [who, e] of rs) {
    if (!by.has(e)) by.set(e, []);
    by.get(e).push(who);
  }
  return h('div', { class: 'reactions', 'aria-label': 'Reactions' }, [...by].map(([e, whos]) => {
    const mine = whos.includes(me);
    const names = whos.map((w) => (w === me ? 'You' : nameOf(w))).join(', ');
    return h('button', {
      class: 'reaction' + (mine ? ' mine' : ''), type: 'button', 'data-emoji': e, 'data-count': whos.length,
      title: names + (mine ? ' (click to take yours back)' : ''), 'aria-label': e + ' ' + whos.length + ': ' + names,
      onclick: () => { if (mine) react(peer, m, ''); },
    }, e, whos.length > 1 ? h('span', { class: 'count', text: String(whos.length) }) : null);
  }));
}

async function react(peer, m, emoji) {
  try {
    await api('POST', '/api/v1/messages/' + m.id + '/react', { with: peer, emoji });
  } catch (e) { toast('Could not react: ' + e.message, 'error'); }
}

let pickerFor = ''; // the message whose reaction picker is open

// actionsEl is the row of actions of message m: reply, react (a small
// picker), edit and delete. contact: the peer is an accepted contact.
export function actionsEl(m, peer, me, composer, contact) {
  // A deleted message can only go; a message request gets no answer of
  // any kind (contact is false), so it can only be deleted here.
  if (m.deleted || !contact) {
    return h('div', { class: 'msg-actions' }, btn('Delete', 'act-delete', () => deleteDialog(peer, m)));
  }
  // The open picker stays open when the list is drawn again (events).
  const picker = h('div', { class: 'picker', role: 'group', 'aria-label': 'Pick a reaction', hidden: pickerFor !== m.id },
    PICKS.map((e) => h('button', {
      type: 'button', class: 'pick' + ((m.reactions || {})[me] === e ? ' mine' : ''), 'data-emoji': e, 'aria-label': 'React ' + e,
      onclick: () => { picker.hidden = true; pickerFor = ''; react(peer, m, (m.reactions || {})[me] === e ? '' : e); },
    }, e)));
  const sent = m.outgoing && m.state !== 'queued' && m.state !== 'failed';
  return h('div', { class: 'msg-actions' },
    btn('Reply', 'act-reply', () => composer.replyTo(m)),
    btn('React', 'act-react', () => { picker.hidden = !picker.hidden; pickerFor = picker.hidden ? '' : m.id; }),
    sent ? btn('Edit', 'act-edit', () => composer.edit(m)) : null,
    btn('Delete', 'act-delete', () => deleteDialog(peer, m)),
    picker);
}

function btn(label, cls, onclick) {
  return h('button', { class: 'act ' + cls, type: 'button', text: label, onclick });
}

// deleteDialog asks how to delete m: here only, or (our own, sent) for
// everyone.
function deleteDialog(peer, m) {
  const everyone = m.outgoing && !m.deleted && m.state !== 'queued';
  const dlg = h('dialog', { class: 'dialog', id: 'delete-dialog', 'aria-labelledby': 'delete-title' });
  const go = async (forAll) => {
    dlg.close();
    try {
      await api('POST', '/api/v1/messages/' + m.id + '/delete', { with: peer, everyone: forAll });
    } catch (e) { toast('Could not delete: ' + e.message, 'error'); }
  };
  dlg.append(h('h2', { id: 'delete-title', text: 'Delete this message?' }),
    h('p', { class: 'muted', text: everyone
      ? 'Delete for everyone removes it on both sides; they will see that a message was deleted.'
      : 'It is removed from this device only.' }),
    h('div', { class: 'actions' },
      h('button', { class: 'btn ghost', type: 'button', text: 'Cancel', onclick: () => dlg.close() }),
      h('button', { class: 'btn danger-ghost', type: 'button', id: 'delete-for-me', text: 'Delete for me', onclick: () => go(false) }),
      everyone ? h('button', { class: 'btn danger', type: 'button', id: 'delete-for-everyone', text: 'Delete for everyone', onclick: () => go(true) }) : null));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}

// bodyText is what a bubble shows as the text: the deleted mark, or the
// text with an edited mark.
export function bodyEls(m) {
  if (m.deleted) return [h('p', { class: 'text deleted', text: 'This message was deleted' })];
  return [h('p', { class: 'text', text: m.text })];
}

export function editedMark(m) {
  return m.edited && !m.deleted ? h('span', { class: 'edited', text: 'edited' }) : null;
}

// Composer holds the reply or edit the composer is in, and sends typing
// indicators: a start at most every 5 s while the user types, a stop
// after 5 s without typing or when the message is sent.
export class Composer {
  constructor(textarea, banner, nameOf) {
    this.ta = textarea;
    this.banner = banner;
    this.nameOf = nameOf;
    this.peer = '';
    this.mode = null; // { kind: 'reply' | 'edit', m }
    this.lastStart = 0;
    this.idle = 0;
  }

  open(peer) {
    this.stopTyping();
    this.peer = peer;
    this.cancel();
  }

  replyTo(m) {
    this.mode = { kind: 'reply', m };
    this.show('Replying to ' + (m.outgoing ? 'yourself' : this.nameOf(m.from)), m.text || fileLabel(m));
    this.ta.focus();
  }

  edit(m) {
    this.mode = { kind: 'edit', m };
    this.show('Editing your message', m.text);
    this.ta.value = m.text;
    this.ta.dispatchEvent(new Event('input'));
    this.ta.focus();
  }

  show(title, text) {
    this.banner.replaceChildren(
      h('div', { class: 'compose-what' }, h('strong', { text: title }), h('span', { class: 'quote-text', text: firstLine(text) })),
      h('button', { class: 'icon-btn', type: 'button', id: 'compose-cancel', 'aria-label': 'Cancel', title: 'Cancel', text: '✕', onclick: () => this.cancel() }));
    this.banner.dataset.mode = this.mode.kind;
    this.banner.hidden = false;
  }

  cancel() {
    const wasEdit = this.mode && this.mode.kind === 'edit';
    this.mode = null;
    this.banner.hidden = true;
    this.banner.replaceChildren();
    delete this.banner.dataset.mode;
    if (wasEdit) { this.ta.value = ''; this.ta.dispatchEvent(new Event('input')); }
  }

  // submit sends text as the composer's mode says: an edit, a reply or a
  // plain message (send). It returns the message, or throws.
  async submit(to, text, send) {
    const mode = this.mode;
    this.stopTyping();
    if (mode && mode.kind === 'edit') {
      const m = await api('POST', '/api/v1/messages/' + mode.m.id + '/edit', { with: to, text });
      this.cancel();
      return m;
    }
    const m = await send(mode && mode.kind === 'reply' ? mode.m.id : '');
    if (mode) this.cancel();
    return m;
  }

  // typed is called on every input in the composer.
  typed() {
    // No typing indicators in groups: they would go to every member.
    if (!this.peer || this.peer.startsWith('group:') || (this.mode && this.mode.kind === 'edit')) return;
    if (this.ta.value.trim() === '') { this.stopTyping(); return; }
    const now = Date.now();
    if (now - this.lastStart > 5000) {
      this.lastStart = now;
      postTyping(this.peer, true);
    }
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stopTyping(), 5000);
  }

  stopTyping() {
    clearTimeout(this.idle);
    if (this.lastStart && this.peer) postTyping(this.peer, false);
    this.lastStart = 0;
  }
}

function postTyping(peer, typing) {
  api('POST', '/api/v1/typing', { with: peer, typing }).catch(() => {});
}

// Typing tracks who is typing (from events) and shows "typing…" in the
// open chat's header, for at most 8 s after the last start.
export class Typing {
  constructor() { this.until = new Map(); this.timer = 0; this.el = null; this.peer = ''; }

  // mount puts the indicator into a chat header (after each render).
  mount(container, peer) {
    this.peer = peer;
    this.el = h('span', { class: 'typing', id: 'typing-indicator', 'aria-live': 'polite', text: 'typing…' });
    container.append(this.el);
    this.render();
    return container;
  }

  event(ev) {
    if (ev.typing) this.until.set(ev.peer, Date.now() + 8000);
    else this.until.delete(ev.peer);
    this.render();
  }

  // stopped: a message from peer arrived.
  stopped(peer) {
    if (this.until.delete(peer)) this.render();
  }

  render() {
    clearTimeout(this.timer);
    const until = this.until.get(this.peer) || 0;
    const on = until > Date.now();
    if (this.el) this.el.hidden = !on;
    if (on) this.timer = setTimeout(() => this.render(), until - Date.now() + 10);
  }
}

// typingToggle is the "Send typing indicators" setting for the Privacy card.
export function typingToggle() {
  const box = h('input', { id: 'setting-typing', type: 'checkbox', disabled: true, 'aria-describedby': 'setting-typing-hint' });
  const hint = h('p', { class: 'hint', id: 'setting-typing-hint',
    text: 'When on, contacts see when you are typing and you see when they are. Off while read receipts are off. ' +
      'Unlike receipts, an indicator leaves at once, so it shows the network when you type.' });
  const load = (st) => {
    box.checked = st.typing_indicators && st.read_receipts;
    box.disabled = !st.read_receipts;
  };
  box.addEventListener('change', async () => {
    const want = box.checked;
    box.disabled = true;
    try {
      load(await api('PUT', '/api/v1/settings', { typing_indicators: want }));
      toast(want ? 'Typing indicators are on.' : 'Typing indicators are off.');
    } catch (e) {
      box.checked = !want;
      box.disabled = false;
      toast('Could not save the setting: ' + e.message, 'error');
    }
  });
  api('GET', '/api/v1/settings').then(load, () => {});
  // Follow the read receipts toggle, which turns these off with it.
  const follow = (ev) => {
    if (!box.isConnected) { document.removeEventListener('change', follow); return; }
    if (ev.target && ev.target.id === 'setting-read-receipts') setTimeout(() => api('GET', '/api/v1/settings').then(load, () => {}), 300);
  };
  document.addEventListener('change', follow);
  return [h('div', { class: 'toggle' }, box, h('label', { for: 'setting-typing', text: 'Send typing indicators' })), hint];
}
