// Umbra's web app: onboarding, conversations, chat, contacts, your ID and
// the network view. It talks only to the daemon that served it.

import { api, token, Events } from './api.js';
import { h, icon, tick, shortID, timeOf, fullTime, listTime, dayLabel, dayKey, toast } from './dom.js';
import { onboarding } from './onboarding.js';
import { unlock, unprotectedBanner } from './passphrase.js';
import { showMe, showSettings, showAddContact, showNetwork, renameDialog, confirmDialog, dialog } from './panels.js';
import { quoteEl, reactionsEl, actionsEl, bodyEls, editedMark, Composer, Typing } from './msgops.js';
import { chatMenu, showVerify, verifiedBadge, mutedMark, noticeEl, blockedBanner, notifyIncoming, notificationCard } from './trust.js';
import { loadMe, displayName, avatarOf, myAvatar, setTitle, timerLine, timerMark, timerButton, me as myProfile } from './profile.js';
import { searchBox } from './search.js';
import { attachUI, fileEls, fileLabel, forgetFile } from './files.js';
import {
  groupKey, groupOfKey, groupName, groupItem, groupHeadParts, groupBanner, groupLine, senderEl, receiptCount,
  showNewGroup, showGroupInfo, acceptGroup, declineGroup, usersIcon,
} from './groups.js';

const root = document.getElementById('root');

// S is the page's state.
const S = {
  me: '',
  convs: [], // conversations: contacts and message requests
  blocked: [], // blocked accounts, as conversations (state "blocked")
  open: '', // peer of the open chat
  view: 'welcome', // welcome | chat | verify | me | settings | add | network
  msgs: new Map(), // peer -> messages, oldest first
  online: false,
  events: null,
  typing: new Typing(), // who is typing (msgops.js)
  focusMsg: '', // a message to scroll to when the open chat shows it (a search result)
  groups: [], // groups (groups.js); a group's chat is the conversation groupKey(id)
  groupLast: new Map(), // group ID -> its last message seen here
  info: '', // the group whose member panel is open
};

// nameOf names a conversation or an account: a group's name, a contact's
// name, a group member's name, else the short ID.
function nameOf(peer) {
  const gid = groupOfKey(peer);
  if (gid) return groupName(groupOf(gid));
  const c = S.convs.find((x) => x.peer === peer);
  if (c) return displayName(c);
  for (const g of S.groups) {
    const m = (g.members || []).find((x) => x.id === peer && x.name);
    if (m) return m.name;
  }
  return shortID(peer);
}

function groupOf(gid) { return S.groups.find((g) => g.id === gid); }

// convKey is the conversation a message belongs to.
function convKey(m) { return m.group ? groupKey(m.group) : m.outgoing ? m.to : m.from; }

// contactsForGroups are the accepted contacts, to pick group members from.
function contactsForGroups() {
  return S.convs.filter((c) => c.state === 'contact').map((c) => ({ peer: c.peer, name: c.name || c.profile_name || '' }));
}

function convOf(peer) { return S.convs.find((x) => x.peer === peer) || S.blocked.find((x) => x.peer === peer); }

// ---- start ----

async function start() {
  if (!token) {
    fatal('This page needs the daemon\'s token', 'Open the link that "umbra daemon" printed (it ends in #token=…); it is also in daemon.json in your Umbra home folder ("ui").');
    return;
  }
  let acct;
  try {
    acct = await api('GET', '/api/v1/account');
  } catch (e) {
    if (e.status === 401) fatal('Wrong or old token', 'The daemon was restarted or the link is incomplete. Open the link the daemon printed last.');
    else fatal('Cannot reach the Umbra daemon', e.message);
    return;
  }
  if (!acct.exists) {
    onboarding(root, acct, (a) => {
      mountMain(a);
      showView('me');
      toast('Your account is ready. Share your ID so people can reach you.');
    });
    return;
  }
  if (acct.locked) {
    unlock(root, mountMain);
    return;
  }
  mountMain(acct);
}

function fatal(title, text) {
  root.replaceChildren(h('div', { class: 'onboard' }, h('main', { class: 'onboard-card', role: 'alert' },
    h('div', { class: 'brand brand-lg' }, h('img', { src: 'icon.svg', alt: '', width: 44, height: 44 }), h('span', { text: 'Umbra' })),
    h('h1', { text: title }), h('p', { class: 'muted', text: text }))));
}

// ---- layout ----

let shell, convList, reqSection, reqList, mainPane, statusDot, blockedSection, blockedList, meBtn, search, groupSection, groupList;

// mountMain shows the app for the account status acct.
function mountMain(acct) {
  const me = acct.account_id;
  S.me = me;
  meBtn = h('button', { class: 'me-btn', type: 'button', id: 'me-btn', title: 'Profile and settings', onclick: () => showView('settings') });
  const drawMe = () => {
    meBtn.replaceChildren(myAvatar(), h('span', { class: 'me-text' }, h('strong', { text: myProfile.name || 'You' }), h('span', { class: 'mono muted', text: shortID(me) })));
    renderConvs();
  };
  drawMe();
  loadMe(me, drawMe);
  statusDot = h('span', { class: 'status-dot', role: 'status', 'aria-label': 'Connecting', title: 'Connecting' });
  const headBtn = (name, label, view) => h('button', {
    class: 'icon-btn', type: 'button', 'aria-label': label, title: label, 'data-view': view,
    onclick: () => showView(view),
  }, icon(name));
  convList = h('ul', { class: 'conv-list', id: 'conv-list', 'aria-labelledby': 'chats-title' });
  reqList = h('ul', { class: 'conv-list', id: 'request-list', 'aria-labelledby': 'requests-title' });
  reqSection = h('section', { class: 'requests', id: 'requests', hidden: true },
    h('h2', { class: 'side-title', id: 'requests-title', text: 'Message requests' }), reqList);
  groupList = h('ul', { class: 'conv-list', id: 'group-list', 'aria-labelledby': 'groups-title' });
  groupSection = h('section', { class: 'groups-section', id: 'groups', hidden: true },
    h('h2', { class: 'side-title', id: 'groups-title', text: 'Groups' }), groupList);
  blockedList = h('ul', { class: 'conv-list', id: 'blocked-list' });
  blockedSection = h('details', { class: 'blocked-section', id: 'blocked', hidden: true },
    h('summary', { class: 'side-title', text: 'Blocked' }), blockedList);
  mainPane = h('main', { class: 'main', id: 'main', tabindex: '-1' });
  const sideBody = h('div', { class: 'side-body' });
  search = searchBox(sideBody, (peer, id) => { S.focusMsg = id; showView('chat', peer); }, nameOf);
  shell = h('div', { class: 'app', id: 'app-shell' },
    h('aside', { class: 'sidebar', 'aria-label': 'Conversations and contacts' },
      h('header', { class: 'side-head' },
        h('div', { class: 'brand' }, h('img', { src: 'icon.svg', alt: '', width: 28, height: 28 }), h('span', { text: 'Umbra' }), statusDot),
        h('nav', { class: 'head-actions', 'aria-label': 'Main' },
          headBtn('addUser', 'Add contact', 'add'),
          h('button', { class: 'icon-btn', type: 'button', id: 'new-group-btn', 'aria-label': 'New group', title: 'New group', 'data-view': 'new-group', onclick: () => showView('new-group') }, usersIcon()),
          headBtn('qr', 'My ID', 'me'),
          headBtn('network', 'Network', 'network'),
          headBtn('settings', 'Settings', 'settings'))),
      search.field,
      append(sideBody, search.section,
        reqSection,
        groupSection,
        h('section', { class: 'chats-section' },
          h('h2', { class: 'side-title', id: 'chats-title', text: 'Chats' }), convList),
        blockedSection),
      h('footer', { class: 'side-foot' }, meBtn)),
    mainPane);
  // The warning stays at the top while the account has no passphrase.
  if (acct.unprotected) shell.prepend(unprotectedBanner(() => {}));
  root.replaceChildren(shell);
  showView('welcome');
  S.events = new Events(onEvent, onStatus);
  S.events.start();
  refreshConvs();
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && S.view !== 'welcome' && !document.querySelector('dialog[open]')) goBack();
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) markReadSoon(); });
  window.addEventListener('focus', markReadSoon);
}

function onStatus(st) {
  S.online = st === 'online';
  const label = S.online ? 'Connected to the daemon' : 'Reconnecting to the daemon…';
  statusDot.className = 'status-dot ' + st;
  statusDot.setAttribute('aria-label', label);
  statusDot.title = label;
  if (S.online) { // catch up on what happened while away
    refreshConvs();
    if (S.open) loadMessages(S.open);
  }
}

// showView switches the main pane. On phones the pane replaces the list.
export function showView(view, peer) {
  S.view = view;
  S.open = view === 'chat' ? peer : '';
  S.info = view === 'group-info' ? groupOfKey(peer) : '';
  shell.classList.toggle('show-main', view !== 'welcome');
  for (const b of shell.querySelectorAll('.head-actions .icon-btn')) {
    if (b.dataset.view === view) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  const back = () => h('button', { class: 'icon-btn back', type: 'button', 'aria-label': 'Back to conversations', title: 'Back', onclick: goBack }, icon('back'));
  switch (view) {
    case 'chat': renderChat(peer, back()); break;
    case 'me': showMe(mainPane, S.me, back()); break;
    case 'settings': showSettings(mainPane, back(), notificationCard()); break;
    case 'verify': {
      const toChat = h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Back to the chat', title: 'Back', onclick: () => showView('chat', peer) }, icon('back'));
      showVerify(mainPane, peer, toChat, refreshConvs);
      break;
    }
    case 'add': showAddContact(mainPane, back(), onContactAdded); break;
    case 'new-group':
      showNewGroup(mainPane, back(), contactsForGroups(), (g) => { upsertGroup(g); showView('chat', groupKey(g.id)); });
      break;
    case 'group-info': renderGroupInfo(); break;
    case 'network': showNetwork(mainPane, back()); break;
    default: renderWelcome();
  }
  renderConvs();
}

function goBack() {
  showView('welcome');
  const first = convList.querySelector('button');
  if (first) first.focus();
}

function renderWelcome() {
  mainPane.replaceChildren(h('div', { class: 'empty-main' },
    h('div', { class: 'empty-art', 'aria-hidden': 'true' }, icon('chat')),
    h('h1', { text: 'Umbra' }),
    h('p', { class: 'muted', text: 'Pick a conversation, or add a contact by their account ID to start one.' }),
    h('p', { class: 'muted small' }, icon('lock', 'inline'), ' End-to-end encrypted. Sent through onion paths: no node learns who talks to whom.'),
    h('button', { class: 'btn primary', type: 'button', onclick: () => showView('add'), text: 'Add a contact' })));
}

function onContactAdded(c) {
  refreshConvs().then(() => showView('chat', c.id));
}

// ---- conversation list ----

let convsTimer = 0;
function refreshConvsSoon() {
  clearTimeout(convsTimer);
  convsTimer = setTimeout(refreshConvs, 120);
}

async function refreshConvs() {
  try {
    const [convs, blocked, groups] = await Promise.all([api('GET', '/api/v1/conversations'), api('GET', '/api/v1/blocked'), api('GET', '/api/v1/groups')]);
    S.convs = convs;
    S.groups = groups;
    S.blocked = blocked.map((b) => ({ peer: b.id, name: b.name || '', state: 'blocked', unread: 0 }));
  } catch (e) {
    toast(e.message, 'error');
    return;
  }
  renderConvs();
  if (S.view === 'chat') {
    updateChatHead();
    renderMessages(S.open); // the actions depend on the contact's state
  }
  if (S.view === 'group-info') renderGroupInfo();
}

function renderConvs() {
  if (!convList) return;
  const requests = S.convs.filter((c) => c.state === 'request');
  const chats = S.convs.filter((c) => c.state !== 'request');
  const unread = S.convs.reduce((n, c) => n + (c.unread || 0), 0) + S.groups.reduce((n, g) => n + (g.unread || 0), 0);
  setTitle(unread);
  renderGroups();
  reqSection.hidden = requests.length === 0;
  reqList.replaceChildren(...requests.map(requestItem));
  blockedSection.hidden = S.blocked.length === 0;
  blockedList.replaceChildren(...S.blocked.map((c) => h('li', {},
    h('button', { class: 'conv', type: 'button', 'data-peer': c.peer, onclick: () => showView('chat', c.peer), 'aria-current': S.open === c.peer ? 'true' : false },
      avatarOf(c), h('span', { class: 'conv-body' }, h('span', { class: 'conv-name', text: displayName(c) }))))));
  if (chats.length === 0) {
    convList.replaceChildren(h('li', { class: 'conv-empty' },
      h('p', { text: 'No conversations yet.' }),
      h('button', { class: 'btn ghost sm', type: 'button', onclick: () => showView('add'), text: 'Add a contact' })));
    return;
  }
  convList.replaceChildren(...chats.map(convItem));
}

function preview(c) {
  if (!c.last) return 'No messages yet';
  if (c.last.deleted) return 'This message was deleted';
  if (c.last.notice) return 'Session reset: verify the safety number';
  if (c.last.kind === 'timer') return 'Disappearing messages: ' + (c.last.expire ? 'on' : 'off');
  return (c.last.outgoing ? 'You: ' : '') + ((c.last.file && !c.last.text) ? fileLabel(c.last) : c.last.text.replace(/\s+/g, ' '));
}

function convItem(c) {
  const current = S.view === 'chat' && S.open === c.peer;
  return h('li', {},
    h('button', {
      class: 'conv' + (c.unread ? ' unread' : ''), type: 'button', 'data-peer': c.peer,
      'aria-current': current ? 'true' : false, onclick: () => showView('chat', c.peer),
    },
    avatarOf(c),
    h('span', { class: 'conv-body' },
      h('span', { class: 'conv-top' },
        h('span', { class: 'conv-name', text: displayName(c) }),
        c.verified ? verifiedBadge() : null, c.muted ? mutedMark() : null,
        c.last ? h('time', { class: 'conv-time', datetime: c.last.sent_at, text: listTime(c.last.sent_at) }) : null),
      h('span', { class: 'conv-bottom' },
        c.last && c.last.outgoing ? tick(c.last.state) : null,
        h('span', { class: 'conv-last', text: preview(c) }),
        c.unread ? h('span', { class: 'badge', 'data-unread': c.unread }, String(c.unread), h('span', { class: 'sr-only', text: ' unread' })) : null))));
}

function requestItem(c) {
  return h('li', { class: 'request', 'data-peer': c.peer },
    h('button', { class: 'conv', type: 'button', onclick: () => showView('chat', c.peer), 'aria-current': S.open === c.peer ? 'true' : false },
      avatarOf(c),
      h('span', { class: 'conv-body' },
        h('span', { class: 'conv-top' }, h('span', { class: 'conv-name' + (c.profile_name ? '' : ' mono'), text: c.profile_name ? c.profile_name + ' · ' + shortID(c.peer) : shortID(c.peer) }),
          c.last ? h('time', { class: 'conv-time', datetime: c.last.sent_at, text: listTime(c.last.sent_at) }) : null),
        h('span', { class: 'conv-bottom' }, h('span', { class: 'conv-last', text: preview(c) }),
          c.unread ? h('span', { class: 'badge' }, String(c.unread), h('span', { class: 'sr-only', text: ' unread' })) : null))),
    h('div', { class: 'request-actions' },
      h('button', { class: 'btn primary sm', type: 'button', 'aria-label': 'Accept message request from ' + shortID(c.peer), onclick: () => accept(c.peer), text: 'Accept' }),
      h('button', { class: 'btn danger-ghost sm', type: 'button', 'aria-label': 'Block ' + shortID(c.peer), onclick: () => block(c.peer), text: 'Block' })));
}

async function accept(peer) {
  try {
    await api('POST', '/api/v1/requests/' + encodeURIComponent(peer) + '/accept');
    toast('Accepted: ' + shortID(peer) + ' is now a contact.');
    await refreshConvs();
    showView('chat', peer);
  } catch (e) { toast(e.message, 'error'); }
}

async function block(peer) {
  const ok = await confirmDialog('Block ' + shortID(peer) + '?', 'Their messages will be dropped. They are not told.', 'Block');
  if (!ok) return;
  try {
    await api('POST', '/api/v1/requests/' + encodeURIComponent(peer) + '/block');
    toast('Blocked ' + shortID(peer) + '.');
    if (S.open === peer) showView('welcome');
    refreshConvs();
  } catch (e) { toast(e.message, 'error'); }
}

// ---- groups ----

// renderGroups draws the sidebar's group list: invitations first, then by
// the last message seen (or when we joined).
function renderGroups() {
  if (!groupList) return;
  const at = (g) => {
    const last = S.groupLast.get(g.id);
    return Math.max(last ? Date.parse(last.sent_at) : 0, Date.parse(g.since) || 0);
  };
  const gs = S.groups.filter((g) => g.status !== 'declined')
    .sort((a, b) => ((a.status === 'invited') === (b.status === 'invited') ? at(b) - at(a) : a.status === 'invited' ? -1 : 1));
  groupSection.hidden = gs.length === 0;
  const on = { open: (key) => showView('chat', key), accept: onAcceptGroup, decline: onDeclineGroup };
  groupList.replaceChildren(...gs.map((g) => groupItem(g, S.view === 'chat' && S.open === groupKey(g.id), S.groupLast.get(g.id), nameOf, on)));
}

// upsertGroup takes a group's new state (from an answer or an event).
function upsertGroup(g) {
  const i = S.groups.findIndex((x) => x.id === g.id);
  if (i >= 0) S.groups[i] = g;
  else S.groups.unshift(g);
  renderConvs();
  if (S.view === 'chat' && S.open === groupKey(g.id)) {
    updateChatHead();
    renderMessages(S.open); // the actions depend on the status
  }
  if (S.view === 'group-info' && S.info === g.id) renderGroupInfo();
}

// noteGroupLast remembers a group's last message for the list.
function noteGroupLast(m) {
  if (!m.group) return;
  const old = S.groupLast.get(m.group);
  if (!old || old.id === m.id || Date.parse(m.sent_at) >= Date.parse(old.sent_at)) S.groupLast.set(m.group, m);
}

async function onAcceptGroup(g) {
  const ng = await acceptGroup(g);
  if (!ng) return;
  upsertGroup(ng);
  showView('chat', groupKey(ng.id));
}

async function onDeclineGroup(g) {
  const ng = await declineGroup(g);
  if (ng) upsertGroup(ng);
}

// renderGroupInfo draws the member panel of S.info, unless what it shows
// did not change (it would lose what the user is typing).
let infoShown = '';
function renderGroupInfo() {
  const g = groupOf(S.info);
  if (!g) return;
  const sig = JSON.stringify([g.id, g.name, g.description, g.status, g.role, g.members, contactsForGroups()]);
  if (sig === infoShown && mainPane.querySelector('#group-panel')) return;
  infoShown = sig;
  const key = groupKey(g.id);
  const toChat = h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Back to the chat', title: 'Back', onclick: () => showView('chat', key) }, icon('back'));
  showGroupInfo(mainPane, g, toChat, contactsForGroups(), nameOf, upsertGroup);
}

// ---- chat ----

let msgBox, chatHead, composer, compose;

function renderChat(peer, backBtn) {
  const c = convOf(peer) || { peer, name: '', state: 'contact' };
  chatHead = h('header', { class: 'chat-head' });
  msgBox = h('div', { class: 'messages', id: 'messages', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0' });
  composer = h('textarea', { id: 'composer', rows: 1, placeholder: 'Write a message', autocomplete: 'off', enterkeyhint: 'send' });
  const sendBtn = h('button', { class: 'send-btn', type: 'submit', 'aria-label': 'Send message', title: 'Send (Enter)' }, icon('send'));
  const banner = h('div', { class: 'compose-banner', id: 'compose-banner', hidden: true });
  if (compose) compose.stopTyping();
  compose = new Composer(composer, banner, nameOf);
  compose.open(peer);
  const form = h('form', { class: 'composer', 'aria-label': 'Write a message' });
  const section = h('section', { class: 'chat', 'data-peer': peer, 'data-group': groupOfKey(peer) || false, 'aria-labelledby': 'chat-title' }, chatHead, msgBox, form);
  const att = attachUI({ form, section, textarea: composer, target: () => (S.open === peer ? peer : ''), canCaption: () => !(compose.mode && compose.mode.kind === 'edit'), sent: (m) => { upsert(m); refreshConvsSoon(); } });
  form.append(att.status, banner, att.input, att.attachBtn, h('label', { class: 'sr-only', for: 'composer', text: 'Message' }), composer, att.micBtn, sendBtn);
  form.addEventListener('submit', (ev) => { ev.preventDefault(); send(); });
  composer.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); send(); }
  });
  composer.addEventListener('input', autoGrow);
  composer.addEventListener('input', () => compose.typed());
  chatHead.append(backBtn);
  mainPane.replaceChildren(section);
  updateChatHead(c);
  renderMessages(peer);
  loadMessages(peer);
  composer.focus();
}

function updateChatHead(c) {
  if (groupOfKey(S.open)) {
    updateGroupHead();
    return;
  }
  c = c || convOf(S.open);
  if (!c || !chatHead) return;
  const back = chatHead.querySelector('.back');
  const isReq = c.state === 'request';
  const named = c.name || c.profile_name;
  chatHead.replaceChildren(back,
    avatarOf(c),
    h('div', { class: 'chat-title' },
      h('h1', { id: 'chat-title' }, h('span', { text: displayName(c) }), c.verified ? verifiedBadge() : null),
      h('p', { class: 'sub' }, named ? [h('span', { class: 'mono', text: shortID(c.peer) }), ' · '] : null,
        icon('lock', 'inline'), named ? ' encrypted' : ' end-to-end encrypted'),
      S.typing.mount(h('p', { class: 'sub typing-line' }), c.peer)),
    h('div', { class: 'chat-actions' },
      isReq ? null : timerButton(c, dialog),
      isReq ? null : h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Rename contact', title: 'Rename', onclick: () => rename(c) }, icon('edit')),
      chatMenu(c, (action) => onChatAction(c.peer, action))));
  const section = chatHead.parentElement;
  const old = section && section.querySelector('.request-banner');
  if (old) old.remove();
  if (c.state === 'blocked' && section) chatHead.after(blockedBanner(c, (action) => onChatAction(c.peer, action)));
  if (isReq && section) {
    chatHead.after(h('div', { class: 'request-banner', role: 'region', 'aria-label': 'Message request' },
      h('p', { text: 'This person is not in your contacts. Accept to reply and let them know their messages arrived, or block them.' }),
      h('div', { class: 'request-actions' },
        h('button', { class: 'btn primary sm', type: 'button', onclick: () => accept(c.peer), text: 'Accept' }),
        h('button', { class: 'btn danger-ghost sm', type: 'button', onclick: () => block(c.peer), text: 'Block' }))));
  }
}

// updateGroupHead draws a group chat's header, its banner (an invitation,
// or that we are out) and shows the composer to members only.
function updateGroupHead() {
  const g = groupOf(groupOfKey(S.open));
  if (!g || !chatHead) return;
  const back = chatHead.querySelector('.back');
  const parts = groupHeadParts(g, () => showView('group-info', S.open));
  chatHead.replaceChildren(back, parts.avatar, parts.title, parts.actions);
  const section = chatHead.parentElement;
  if (!section) return;
  const old = section.querySelector('#group-banner');
  if (old) old.remove();
  const banner = groupBanner(g, nameOf, { accept: onAcceptGroup, decline: onDeclineGroup });
  if (banner) chatHead.after(banner);
  const form = section.querySelector('form.composer');
  if (form) form.hidden = g.status !== 'member';
}

function autoGrow() {
  composer.style.height = 'auto';
  composer.style.height = Math.min(composer.scrollHeight, 160) + 'px';
}

async function loadMessages(peer) {
  const gid = groupOfKey(peer);
  try {
    const ms = await api('GET', gid ? '/api/v1/groups/' + encodeURIComponent(gid) + '/messages' : '/api/v1/messages?with=' + encodeURIComponent(peer));
    S.msgs.set(peer, ms);
    if (gid && ms.length) noteGroupLast(ms[ms.length - 1]);
  } catch (e) {
    toast(e.message, 'error');
    return;
  }
  if (S.open === peer) {
    renderMessages(peer);
    markReadSoon();
  }
}

// sortMsgs orders by the sender's clock, then ID, as the daemon does. The
// times are compared as numbers: their text drops trailing zeros.
function sortMsgs(ms) {
  ms.sort((a, b) => (Date.parse(a.sent_at) - Date.parse(b.sent_at)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

// upsert adds, updates or (removed) drops a message in its conversation.
function upsert(m, removed) {
  const peer = convKey(m);
  if (m.file && (removed || m.deleted)) forgetFile(m.id);
  if (!removed) noteGroupLast(m);
  const ms = S.msgs.get(peer);
  if (!ms) return;
  const i = ms.findIndex((x) => x.id === m.id);
  if (removed) {
    if (i >= 0) ms.splice(i, 1);
  } else if (i >= 0) {
    // never move a message's state backwards (events can race the send answer)
    if (rank(m.state) < rank(ms[i].state)) return;
    ms[i] = m;
  } else {
    ms.push(m);
    sortMsgs(ms);
  }
  if (S.open === peer) renderMessages(peer);
}

const RANKS = { queued: 0, failed: 0, sent: 1, delivered: 2, read: 3, received: 0 };
function rank(s) { return RANKS[s] || 0; }

function renderMessages(peer) {
  if (!msgBox) return;
  const ms = S.msgs.get(peer);
  if (!ms) {
    msgBox.replaceChildren(h('p', { class: 'chat-note muted', text: 'Loading…' }));
    return;
  }
  const atBottom = msgBox.scrollHeight - msgBox.scrollTop - msgBox.clientHeight < 80;
  const nodes = [h('p', { class: 'chat-note' }, icon('lock', 'inline'), groupOfKey(peer)
    ? ' Messages in this group are end-to-end encrypted. Only its members can read them, and only from when they joined.'
    : ' Messages are end-to-end encrypted. Check the account ID with ' + nameOf(peer) + ' in person to be sure it is them.')];
  let day = null;
  for (const m of ms) {
    const d = dayKey(m.sent_at);
    if (d !== day) {
      day = d;
      nodes.push(h('div', { class: 'day-sep', role: 'separator' }, h('span', { text: dayLabel(m.sent_at) })));
    }
    nodes.push(m.notice ? noticeEl(m, nameOf(peer), () => showView('verify', peer)) : messageEl(m));
  }
  if (ms.length === 0) nodes.push(h('p', { class: 'chat-note muted', text: 'No messages yet. Say hello!' }));
  msgBox.replaceChildren(...nodes);
  const found = S.focusMsg && msgBox.querySelector('.msg[data-id="' + CSS.escape(S.focusMsg) + '"]');
  if (found) { // opened from a search result: show that message
    S.focusMsg = '';
    msgBox.dataset.scrolled = peer;
    found.classList.add('found');
    found.scrollIntoView({ block: 'center' });
  } else if (atBottom || msgBox.dataset.scrolled !== peer) {
    msgBox.scrollTop = msgBox.scrollHeight;
    msgBox.dataset.scrolled = peer;
  }
}

function messageEl(m) {
  if (m.kind === 'timer') return timerLine(m, nameOf(m.from));
  if (m.kind === 'group') return groupLine(m);
  const dir = m.outgoing ? 'out' : 'in';
  const peer = convKey(m);
  const ms = S.msgs.get(peer) || [];
  const g = m.group ? groupOf(m.group) : null;
  const canAct = m.group ? !!g && g.status === 'member' : (convOf(peer) || {}).state === 'contact';
  return h('div', { class: 'msg ' + dir + (m.deleted ? ' deleted' : ''), 'data-id': m.id, 'data-state': m.state, 'data-from': m.from },
    h('div', { class: 'bubble' },
      m.group && !m.outgoing ? senderEl(m, nameOf) : null,
      quoteEl(m, ms, nameOf, showMessage),
      m.file && !m.deleted ? fileEls(m, upsert) : null,
      !m.file || m.text || m.deleted ? bodyEls(m) : null,
      h('span', { class: 'meta' },
        editedMark(m),
        timerMark(m),
        h('time', { datetime: m.sent_at, title: fullTime(m.sent_at), text: timeOf(m.sent_at) }),
        m.outgoing ? tick(m.state) : null,
        m.group && m.outgoing ? receiptCount(m) : null)),
    reactionsEl(m, S.me, nameOf, peer),
    actionsEl(m, peer, S.me, compose, canAct),
    m.state === 'failed' ? h('p', { class: 'msg-error', role: 'alert', text: 'Not sent: ' + (m.error || 'unknown error') }) : null);
}

// showMessage scrolls to a message and flashes it (a quote's target).
function showMessage(id) {
  const el = msgBox && msgBox.querySelector('.msg[data-id="' + id + '"]');
  if (!el) return;
  el.scrollIntoView({ block: 'center' });
  el.classList.add('flash');
  setTimeout(() => el.classList.remove('flash'), 1200);
}

async function send() {
  const text = composer.value.trim();
  if (!text) return;
  const to = S.open;
  composer.value = '';
  autoGrow();
  try {
    const gid = groupOfKey(to);
    const m = await compose.submit(to, text, (replyTo) => (gid
      ? api('POST', '/api/v1/groups/' + encodeURIComponent(gid) + '/messages', replyTo ? { text, reply_to: replyTo } : { text })
      : api('POST', '/api/v1/messages', replyTo ? { to, text, reply_to: replyTo } : { to, text })));
    upsert(m);
  } catch (e) {
    toast('Could not send: ' + e.message, 'error');
    if (S.open === to && composer.value === '') { composer.value = text; autoGrow(); }
  }
  refreshConvsSoon();
}

// markReadSoon marks the open chat read when the page is in view. Message
// requests are not marked: strangers get no read receipts.
let readTimer = 0;
function markReadSoon() {
  clearTimeout(readTimer);
  readTimer = setTimeout(async () => {
    const peer = S.open;
    const gid = groupOfKey(peer);
    const c = gid ? groupOf(gid) : convOf(peer);
    if (!peer || document.hidden || !c || c.state !== 'contact' && c.status !== 'member') return;
    const ms = S.msgs.get(peer) || [];
    if (!ms.some((m) => !m.outgoing && m.state === 'received')) return;
    try {
      if (gid) await api('POST', '/api/v1/groups/' + encodeURIComponent(gid) + '/read');
      else await api('POST', '/api/v1/read', { with: peer });
    } catch (e) { toast(e.message, 'error'); }
  }, 300);
}

async function rename(c) {
  const name = await renameDialog(c.name || '', shortID(c.peer));
  if (name === null) return;
  try {
    await api('PATCH', '/api/v1/contacts/' + encodeURIComponent(c.peer), { name });
    toast(name ? 'Renamed to ' + name + '.' : 'Name removed.');
    refreshConvs();
  } catch (e) { toast(e.message, 'error'); }
}

// onChatAction follows up an action of the chat header menu (trust.js).
function onChatAction(peer, action) {
  switch (action) {
    case 'verify': showView('verify', peer); return;
    case 'delete-chat':
      S.msgs.set(peer, []);
      if (S.open === peer) renderMessages(peer);
      break;
    case 'remove-contact': showView('welcome'); break;
  }
  refreshConvs();
}

// ---- events ----

// firstSight reports whether the page sees a message's event the first time.
const seen = new Set();
function firstSight(id) {
  if (seen.has(id)) return false;
  if (seen.size > 2000) seen.clear();
  seen.add(id);
  return true;
}

function onEvent(ev) {
  if (ev.type === 'typing') {
    S.typing.event(ev);
    return;
  }
  if (ev.type === 'group' && ev.group) {
    upsertGroup(ev.group);
    return;
  }
  // A file's progress comes as more events of its message: one
  // notification a message.
  const fresh = ev.type === 'message' && ev.message && firstSight(ev.message.id);
  const shown = fresh && ev.message.file && !ev.message.text ? { ...ev.message, text: fileLabel(ev.message) } : ev.message;
  if (fresh && ev.message.group) {
    const m = shown;
    const g = groupOf(m.group);
    // As the group's conversation: the notification names the group and
    // opens its chat.
    if (m.kind !== 'group' && (!g || g.status === 'member')) {
      notifyIncoming({ ...m, from: groupKey(m.group), text: nameOf(m.from) + ': ' + m.text }, { name: groupName(g), state: 'contact' }, S.open, (p) => showView('chat', p));
    }
  } else if (fresh) notifyIncoming(shown, convOf(shown.from), S.open, (p) => showView('chat', p));
  if (ev.type === 'cleared' && ev.contact) {
    S.msgs.set(ev.contact.id, []);
    if (S.open === ev.contact.id) renderMessages(ev.contact.id);
  }
  if (ev.type === 'profile') { loadMe(S.me); return; } // changed elsewhere (CLI, another tab)
  if (ev.type === 'expired' && ev.message) { // a disappearing message's time is up
    const peer = convKey(ev.message);
    forgetFile(ev.message.id);
    const ms = S.msgs.get(peer);
    if (ms) S.msgs.set(peer, ms.filter((x) => x.id !== ev.message.id));
    if (S.open === peer) renderMessages(peer);
    search.refresh();
    refreshConvsSoon();
    return;
  }
  if (ev.message) {
    upsert(ev.message, ev.type === 'removed');
    if (ev.type === 'message' && !ev.message.outgoing && !ev.message.group) S.typing.stopped(ev.message.from);
    if (!ev.message.outgoing && S.open === convKey(ev.message)) markReadSoon();
  }
  if (ev.type === 'contact' && ev.contact && ev.contact.state === 'removed' && S.open === ev.contact.id && S.view === 'chat') {
    updateChatHead();
  }
  if (ev.message) search.refresh();
  refreshConvsSoon();
}

function append(el, ...children) { el.append(...children); return el; }

start();
