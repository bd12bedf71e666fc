// Groups in the web app: the sidebar's group list (invitations with
// Accept and Decline), the "New group" form, the group chat's header,
// banner and system lines, the receipt counts of our own messages, and the
// member panel (admins add, remove, promote, demote and rename; everyone
// can leave). app.js keeps a group's conversation under the key
// "group:" + its ID, the "with" the message actions take.

import { api } from './api.js';
import { fileLabel } from './files.js';
import { h, svg, icon, avatar, shortID, listTime, toast } from './dom.js';
import { confirmDialog } from './panels.js';

const enc = encodeURIComponent;

export const GROUP_PREFIX = 'group:';

// groupKey is the conversation key of group gid; groupOfKey the reverse
// ('' for a contact's conversation).
export function groupKey(gid) { return GROUP_PREFIX + gid; }
export function groupOfKey(key) { return key && key.startsWith(GROUP_PREFIX) ? key.slice(GROUP_PREFIX.length) : ''; }

const USERS = 'M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8M23 21v-2a4 4 0 0 0-3-3.9M16 3.1a4 4 0 0 1 0 7.8';

// usersIcon is the group icon (24x24, stroked like dom.js's).
export function usersIcon(cls) {
  const el = svg('svg', { viewBox: '0 0 24 24', class: 'icon' + (cls ? ' ' + cls : ''), 'aria-hidden': 'true', focusable: 'false' });
  el.append(svg('path', { d: USERS }));
  return el;
}

// groupAvatar is a group's initial on a rounded square.
export function groupAvatar(g) {
  const a = avatar(g.id, g.name || 'Group');
  a.classList.add('avatar-group');
  return a;
}

export function groupName(g) { return (g && g.name) || 'Unnamed group'; }

const STATUS_TEXT = {
  invited: 'Invitation',
  left: 'You left',
  removed: 'You were removed',
  declined: 'Declined',
};

// memberCount is "3 members".
function memberCount(g) {
  const n = (g.members || []).length;
  return n + (n === 1 ? ' member' : ' members');
}

// groupItem is a group in the sidebar. last is its last known message
// (or null); nameOf names an account; on: {open(key), accept(g), decline(g)}.
export function groupItem(g, current, last, nameOf, on) {
  const invited = g.status === 'invited';
  let preview = memberCount(g);
  if (invited) preview = (g.invited_by ? nameOf(g.invited_by) + ' invited you' : 'You are invited');
  else if (STATUS_TEXT[g.status]) preview = STATUS_TEXT[g.status];
  else if (last) preview = lastText(last, nameOf);
  const btn = h('button', {
    class: 'conv' + (g.unread ? ' unread' : ''), type: 'button', 'data-group': g.id, 'data-status': g.status,
    'aria-current': current ? 'true' : false, onclick: () => on.open(groupKey(g.id)),
  },
  groupAvatar(g),
  h('span', { class: 'conv-body' },
    h('span', { class: 'conv-top' },
      h('span', { class: 'conv-name', text: groupName(g) }),
      last && !invited ? h('time', { class: 'conv-time', datetime: last.sent_at, text: listTime(last.sent_at) }) : null),
    h('span', { class: 'conv-bottom' },
      h('span', { class: 'conv-last', text: preview }),
      g.unread ? h('span', { class: 'badge', 'data-unread': g.unread }, String(g.unread), h('span', { class: 'sr-only', text: ' unread' })) : null)));
  if (!invited) return h('li', {}, btn);
  return h('li', { class: 'request group-invite', 'data-group': g.id }, btn,
    h('div', { class: 'request-actions' },
      h('button', { class: 'btn primary sm group-accept', type: 'button', 'aria-label': 'Accept the invitation to ' + groupName(g), onclick: () => on.accept(g), text: 'Accept' }),
      h('button', { class: 'btn danger-ghost sm group-decline', type: 'button', 'aria-label': 'Decline the invitation to ' + groupName(g), onclick: () => on.decline(g), text: 'Decline' })));
}

// lineText is a system line's text as a sentence: the engine writes "you
// added Bob" for our own changes.
function lineText(m) {
  return (m.text || '').replace(/^you /, 'You ');
}

function lastText(m, nameOf) {
  if (m.deleted) return 'This message was deleted';
  if (m.kind === 'group') return lineText(m);
  return (m.outgoing ? 'You: ' : nameOf(m.from) + ': ') + (m.file && !m.text ? fileLabel(m) : m.text.replace(/\s+/g, ' '));
}

// ---- actions ----

async function groupCall(path, body, done) {
  try {
    const g = await api('POST', path, body);
    if (done) toast(done);
    return g;
  } catch (e) {
    toast(e.message, 'error');
    return null;
  }
}

export function acceptGroup(g) {
  return groupCall('/api/v1/groups/' + enc(g.id) + '/accept', undefined, 'You joined ' + groupName(g) + '.');
}

export async function declineGroup(g) {
  const ok = await confirmDialog('Decline the invitation to ' + groupName(g) + '?', 'You leave the group; its members see that you declined.', 'Decline');
  if (!ok) return null;
  return groupCall('/api/v1/groups/' + enc(g.id) + '/decline', undefined, 'Invitation declined.');
}

export async function leaveGroup(g) {
  const ok = await confirmDialog('Leave ' + groupName(g) + '?', 'The members see that you left. You stop receiving its messages; the ones you have stay here.', 'Leave');
  if (!ok) return null;
  return groupCall('/api/v1/groups/' + enc(g.id) + '/leave', undefined, 'You left ' + groupName(g) + '.');
}

// ---- the chat ----

// groupHeadParts are the title and actions of a group chat's header.
export function groupHeadParts(g, onInfo) {
  const sub = g.status === 'member' || g.status === 'invited' ? memberCount(g) : STATUS_TEXT[g.status] || '';
  return {
    avatar: groupAvatar(g),
    title: h('div', { class: 'chat-title' },
      h('h1', { id: 'chat-title' }, h('span', { text: groupName(g) })),
      h('p', { class: 'sub', id: 'group-sub' }, sub, g.description ? ' · ' + g.description : '')),
    actions: h('div', { class: 'chat-actions' },
      h('button', { class: 'icon-btn', type: 'button', id: 'group-info-btn', 'aria-label': 'Members and group settings', title: 'Members', onclick: onInfo }, usersIcon())),
  };
}

// groupBanner says why a group's chat cannot be written to: an invitation
// (with Accept and Decline), or that we are out of it. null for a member.
export function groupBanner(g, nameOf, on) {
  if (g.status === 'member') return null;
  if (g.status === 'invited') {
    return h('div', { class: 'request-banner group-banner', id: 'group-banner', 'data-status': g.status, role: 'region', 'aria-label': 'Group invitation' },
      h('p', { text: (g.invited_by ? nameOf(g.invited_by) : 'Someone') + ' invited you to this group. Accept to read and write in it, or decline.' }),
      h('div', { class: 'request-actions' },
        h('button', { class: 'btn primary sm group-accept', type: 'button', onclick: () => on.accept(g), text: 'Accept' }),
        h('button', { class: 'btn danger-ghost sm group-decline', type: 'button', onclick: () => on.decline(g), text: 'Decline' })));
  }
  const text = {
    left: 'You left this group.',
    removed: 'You were removed from this group.',
    declined: 'You declined this group\'s invitation.',
  }[g.status] || 'You are not a member of this group.';
  return h('div', { class: 'request-banner group-banner out', id: 'group-banner', 'data-status': g.status, role: 'status' },
    h('p', { text: text + ' Its messages stay here; new ones do not reach you.' }));
}

// groupLine is a group's system line (a member added, removed, promoted,
// the group renamed, someone left). The engine writes the text.
export function groupLine(m) {
  const text = lineText(m);
  return h('div', { class: 'sys-line group-line', 'data-id': m.id, 'data-kind': 'group', role: 'note' }, usersIcon('inline'), h('span', { text }));
}

// senderEl names the author of an incoming group message over its text.
export function senderEl(m, nameOf) {
  return h('span', { class: 'msg-sender hue-text-' + (hashOf(m.from) % 8), 'data-from': m.from, text: nameOf(m.from) });
}

// receiptCount is "read by N" or "delivered to N" on our own group message.
export function receiptCount(m) {
  const read = m.read_count || 0;
  const got = m.delivered_count || 0;
  if (!read && !got) return null;
  const text = read ? 'read by ' + read : 'delivered to ' + got;
  return h('span', { class: 'receipt-count', 'data-read': read, 'data-delivered': got, title: got + ' delivered, ' + read + ' read', text });
}

function hashOf(s) {
  let x = 2166136261;
  for (let i = 0; i < (s || '').length; i++) { x ^= s.charCodeAt(i); x = Math.imul(x, 16777619); }
  return x >>> 0;
}

// ---- new group ----

// showNewGroup is the "New group" form: a name, a description and members
// picked from the contacts. onCreated(g) follows a created group.
export function showNewGroup(pane, backBtn, contacts, onCreated) {
  const nameIn = h('input', { id: 'group-name', type: 'text', maxlength: 64, autocomplete: 'off', required: true, placeholder: 'e.g. Saturday hikers' });
  const descIn = h('input', { id: 'group-desc', type: 'text', maxlength: 200, autocomplete: 'off', placeholder: 'What the group is about (optional)' });
  const err = h('p', { class: 'error', id: 'new-group-error', role: 'alert' });
  const picks = memberPicker('new-group-members', contacts, 'No contacts yet: add contacts first, then make a group with them.');
  const submit = h('button', { class: 'btn primary', type: 'submit', id: 'create-group', text: 'Create group' });
  const form = h('form', { class: 'card', id: 'new-group-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'group-name', text: 'Group name' }), nameIn),
    h('div', { class: 'field' }, h('label', { for: 'group-desc', text: 'Description' }), descIn),
    h('fieldset', { class: 'member-pick' }, h('legend', { text: 'Members' }), picks.el,
      h('p', { class: 'hint', text: 'Contacts who have you as a contact join at once; others get an invitation to accept.' })),
    err,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const name = nameIn.value.trim();
    if (!name) { err.textContent = 'Give the group a name.'; nameIn.focus(); return; }
    const members = picks.chosen();
    if (members.length === 0) { err.textContent = 'Pick at least one member.'; return; }
    submit.disabled = true;
    try {
      const g = await api('POST', '/api/v1/groups', { name, description: descIn.value.trim(), members });
      toast('Created ' + groupName(g) + '.');
      onCreated(g);
    } catch (e) {
      err.textContent = 'Could not create the group: ' + e.message;
    } finally {
      submit.disabled = false;
    }
  });
  pane.replaceChildren(h('section', { class: 'panel', id: 'new-group-panel', 'aria-labelledby': 'new-group-panel-title' },
    h('header', { class: 'panel-head' }, backBtn, h('h1', { id: 'new-group-panel-title', text: 'New group' })),
    h('div', { class: 'panel-body' }, form,
      h('p', { class: 'muted small center' }, icon('lock', 'inline'), ' Group messages are end-to-end encrypted: members share keys that change whenever someone leaves or is removed.'))));
  nameIn.focus();
}

// memberPicker is a list of checkboxes, one per contact ({peer, name}).
function memberPicker(id, contacts, empty) {
  if (contacts.length === 0) return { el: h('p', { class: 'muted', id, text: empty }), chosen: () => [] };
  const list = h('ul', { class: 'pick-list', id },
    contacts.map((c, i) => h('li', {},
      h('input', { type: 'checkbox', id: id + '-' + i, value: c.peer, 'data-peer': c.peer }),
      h('label', { for: id + '-' + i }, avatar(c.peer, c.name), h('span', { text: c.name || shortID(c.peer) })))));
  return { el: list, chosen: () => [...list.querySelectorAll('input:checked')].map((x) => x.value) };
}

// ---- members and settings ----

// showGroupInfo is a group's member panel: the name and description
// (admins change them), the members with their roles (admins add, remove,
// promote and demote) and Leave. contacts are the user's contacts
// ({peer, name}); nameOf names an account; changed(g) takes a new state.
export function showGroupInfo(pane, g, backBtn, contacts, nameOf, changed) {
  const admin = g.status === 'member' && g.role === 'admin';
  const member = g.status === 'member';
  const base = '/api/v1/groups/' + enc(g.id);
  const run = async (path, body, done) => {
    const ng = await groupCall(base + path, body, done);
    if (ng) changed(ng);
  };
  const cards = [];

  // Name and description.
  if (admin) {
    const nameIn = h('input', { id: 'group-rename', type: 'text', maxlength: 64, autocomplete: 'off' });
    const descIn = h('input', { id: 'group-redesc', type: 'text', maxlength: 200, autocomplete: 'off' });
    nameIn.value = g.name || '';
    descIn.value = g.description || '';
    const form = h('form', { class: 'card', id: 'group-info-form', novalidate: true },
      h('h2', { text: 'Group' }),
      h('div', { class: 'field' }, h('label', { for: 'group-rename', text: 'Name' }), nameIn),
      h('div', { class: 'field' }, h('label', { for: 'group-redesc', text: 'Description' }), descIn),
      h('div', { class: 'actions' }, h('button', { class: 'btn primary', type: 'submit', id: 'group-info-save', text: 'Save' })));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = nameIn.value.trim();
      const description = descIn.value.trim();
      if (!name) { toast('Give the group a name.', 'error'); nameIn.focus(); return; }
      if (name === g.name && description === (g.description || '')) return;
      const save = form.querySelector('#group-info-save');
      save.disabled = true;
      try {
        const ng = await api('PATCH', base, { name, description });
        toast('Saved.');
        changed(ng);
      } catch (e) {
        toast(e.message, 'error');
      } finally {
        save.disabled = false;
      }
    });
    cards.push(form);
  } else {
    cards.push(h('div', { class: 'card', id: 'group-about' },
      h('h2', { text: groupName(g) }),
      g.description ? h('p', { class: 'muted', text: g.description }) : null,
      h('p', { class: 'hint', text: 'Only admins change the name and the members.' })));
  }

  // Members.
  // You first, then the admins, then the others (the daemon's order).
  const members = [...(g.members || [])].sort((a, b) => (b.you ? 1 : 0) - (a.you ? 1 : 0));
  const rows = members.map((m) => {
    const who = m.you ? 'You' : nameOf(m.id);
    const acts = [];
    if (admin && !m.you) {
      acts.push(m.role === 'admin'
        ? h('button', { class: 'act act-demote', type: 'button', text: 'Remove as admin', onclick: () => run('/demote', { members: [m.id] }, who + ' is no longer an admin.') })
        : h('button', { class: 'act act-promote', type: 'button', text: 'Make admin', onclick: () => run('/promote', { members: [m.id] }, who + ' is now an admin.') }));
      acts.push(h('button', {
        class: 'act act-remove danger', type: 'button', text: 'Remove',
        onclick: async () => {
          if (await confirmDialog('Remove ' + who + ' from ' + groupName(g) + '?', 'They are told, and they cannot read what is sent after.', 'Remove')) {
            run('/remove', { members: [m.id] }, 'Removed ' + who + '.');
          }
        },
      }));
    }
    return h('li', { class: 'member', 'data-member': m.id, 'data-role': m.role },
      avatar(m.id, m.you ? 'You' : who),
      h('span', { class: 'member-body' },
        h('span', { class: 'member-name', text: who }),
        m.you ? null : h('span', { class: 'mono muted small', text: shortID(m.id) })),
      m.role === 'admin' ? h('span', { class: 'role-badge', text: 'Admin' }) : null,
      acts.length ? h('span', { class: 'member-actions' }, acts) : null);
  });
  cards.push(h('div', { class: 'card', id: 'group-members' },
    h('h2', { text: memberCount(g) }),
    h('ul', { class: 'member-list', id: 'member-list' }, rows)));

  // Add members (admins).
  if (admin) {
    const inGroup = new Set((g.members || []).map((m) => m.id));
    const candidates = contacts.filter((c) => !inGroup.has(c.peer));
    const picks = memberPicker('group-add-members', candidates, 'Every contact is in the group already.');
    const addBtn = h('button', { class: 'btn primary', type: 'submit', id: 'group-add', text: 'Add', hidden: candidates.length === 0 });
    const form = h('form', { class: 'card', id: 'group-add-form', novalidate: true },
      h('h2', { text: 'Add members' }), picks.el, h('div', { class: 'actions' }, addBtn));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const members = picks.chosen();
      if (members.length === 0) { toast('Pick someone to add.', 'error'); return; }
      addBtn.disabled = true;
      await run('/add', { members }, members.length === 1 ? 'Added ' + nameOf(members[0]) + '.' : 'Added ' + members.length + ' members.');
      addBtn.disabled = false;
    });
    cards.push(form);
  }

  // Leave.
  if (member) {
    cards.push(h('div', { class: 'card subtle' },
      h('div', { class: 'actions' }, h('button', {
        class: 'btn danger-ghost', type: 'button', id: 'leave-group', text: 'Leave group',
        onclick: async () => { const ng = await leaveGroup(g); if (ng) changed(ng); },
      }))));
  }

  pane.replaceChildren(h('section', { class: 'panel', id: 'group-panel', 'data-group': g.id, 'aria-labelledby': 'group-panel-title' },
    h('header', { class: 'panel-head' }, backBtn, groupAvatar(g), h('h1', { id: 'group-panel-title', text: groupName(g) })),
    h('div', { class: 'panel-body' }, cards)));
}
