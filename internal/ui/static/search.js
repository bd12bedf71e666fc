// Search over the message history, in the sidebar above the chats. The
// daemon keeps the index in memory (GET /api/v1/search); results show
// the contact, a snippet with the matching words marked, and the time;
// a click opens the conversation at that message.

import { api } from './api.js';
import { h, icon, avatar, shortID, listTime, fullTime } from './dom.js';

// searchBox returns the search field and its results list. While the field
// holds a query, body gets the class "searching" (the CSS then hides the
// chat lists). open(peer, id) opens a conversation at a message; nameOf
// names a conversation the daemon gives no name for (a group).
export function searchBox(body, open, nameOf) {
  const input = h('input', {
    type: 'search', id: 'search', class: 'search-input', placeholder: 'Search messages',
    autocomplete: 'off', spellcheck: 'false', 'aria-label': 'Search messages', 'aria-controls': 'search-results',
  });
  const results = h('ul', { class: 'conv-list search-results', id: 'search-results', 'aria-label': 'Search results', 'aria-live': 'polite' });
  const section = h('section', { class: 'search-section', hidden: true }, results);
  let timer = 0;
  let seq = 0;
  const run = async () => {
    const q = input.value.trim();
    const mine = ++seq;
    if (!q) {
      body.classList.remove('searching');
      section.hidden = true;
      results.replaceChildren();
      return;
    }
    body.classList.add('searching');
    section.hidden = false;
    let rs;
    try {
      rs = await api('GET', '/api/v1/search?limit=50&q=' + encodeURIComponent(q));
    } catch (e) {
      if (mine !== seq) return;
      results.replaceChildren(h('li', { class: 'conv-empty', text: e.message }));
      return;
    }
    if (mine !== seq) return; // a newer query answered or is on its way
    if (rs.length === 0) {
      results.replaceChildren(h('li', { class: 'conv-empty', text: 'No messages match.' }));
      return;
    }
    results.replaceChildren(...rs.map((r) => resultItem(r, open, nameOf)));
  };
  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(run, 150); });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && input.value) {
      ev.stopPropagation();
      input.value = '';
      run();
    }
  });
  const field = h('div', { class: 'search-field', role: 'search' }, icon('search', 'search-icon'), input);
  return { field, section, refresh: () => { if (input.value.trim()) run(); } };
}

function resultItem(r, open, nameOf) {
  const m = r.message;
  const who = r.name || (nameOf ? nameOf(r.peer) : shortID(r.peer));
  const snippet = h('span', { class: 'conv-last search-snippet' },
    m.outgoing ? 'You: ' : '',
    r.snippet.map((s) => (s.match ? h('mark', { text: s.text }) : s.text)));
  return h('li', {},
    h('button', {
      class: 'conv search-result', type: 'button', 'data-peer': r.peer, 'data-id': m.id,
      onclick: () => open(r.peer, m.id),
    },
    avatar(r.peer, r.name),
    h('span', { class: 'conv-body' },
      h('span', { class: 'conv-top' },
        h('span', { class: 'conv-name', text: who }),
        h('time', { class: 'conv-time', datetime: m.sent_at, title: fullTime(m.sent_at), text: listTime(m.sent_at) })),
      h('span', { class: 'conv-bottom' }, snippet))));
}
