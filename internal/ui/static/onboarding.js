// Onboarding: choose a passphrase (or confirm a warning to go without
// one), then create an account (show the recovery phrase, then make the
// user retype three of its words) or restore one from its phrase. The
// account is created only once the phrase is confirmed.

import { api } from './api.js';
import { h, icon, spinner } from './dom.js';
import { choosePassphrase } from './passphrase.js';
import { restoreBackup } from './vault.js';

const CONFIRM_WORDS = 3;

// onboarding runs in root for the account status st (no account yet);
// done gets the new account's status.
export function onboarding(root, st, done) {
  const canCreate = st.can_create;
  // protection is what POST /api/v1/account gets besides the phrase:
  // {passphrase} or {no_passphrase: true}; nothing when the daemon has a
  // passphrase of its own.
  let protection = {};
  const card = h('main', { class: 'onboard-card', id: 'onboarding', 'aria-labelledby': 'onboard-title' });
  root.replaceChildren(h('div', { class: 'onboard' }, card));
  const show = (...children) => {
    card.replaceChildren(...children);
    const first = card.querySelector('h1');
    if (first) first.focus();
  };

  const brand = () => h('div', { class: 'brand brand-lg' },
    h('img', { src: 'icon.svg', alt: '', width: 44, height: 44 }), h('span', { text: 'Umbra' }));

  function welcome() {
    if (!canCreate) {
      show(brand(), h('h1', { id: 'onboard-title', tabindex: '-1', text: 'No account here yet' }),
        h('p', { class: 'muted', text: 'This daemon cannot create an account. Run "umbra init --network FILE" for this home, then start the daemon again.' }));
      return;
    }
    show(
      brand(),
      h('h1', { id: 'onboard-title', tabindex: '-1', text: 'Private messaging, without a phone number' }),
      h('ul', { class: 'features' },
        h('li', {}, icon('user'), h('span', { text: 'No phone number, no e-mail: your account is a key made on this device.' })),
        h('li', {}, icon('shield'), h('span', { text: 'Messages travel through three onion hops, so no node sees who talks to whom.' })),
        h('li', {}, icon('network'), h('span', { text: 'Stored by a network of nodes anyone can run, each mailbox on a swarm of them.' }))),
      h('div', { class: 'actions-col' },
        h('button', { class: 'btn primary lg', id: 'create-account', type: 'button', onclick: () => protect(create), text: 'Create a new account' }),
        h('button', { class: 'btn ghost lg', id: 'restore-account', type: 'button', onclick: () => protect(restore), text: 'Restore from recovery phrase' }),
        st.can_restore ? h('button', { class: 'btn ghost lg', id: 'restore-backup', type: 'button', onclick: () => restoreBackup(show, welcome, done), text: 'Restore from a backup' }) : null));
  }

  // protect asks for the passphrase first (unless the daemon has one),
  // then goes on with next.
  function protect(next) {
    protection = {};
    if (st.daemon_passphrase) {
      next();
      return;
    }
    choosePassphrase(show, welcome, (p) => {
      protection = p;
      next();
    });
  }

  async function create() {
    for (const b of card.querySelectorAll('button')) b.disabled = true;
    try {
      const r = await api('POST', '/api/v1/account/phrase');
      showPhrase(r.recovery_phrase.split(' '));
    } catch (e) {
      for (const b of card.querySelectorAll('button')) b.disabled = false;
      card.append(h('p', { class: 'error', role: 'alert', text: e.message }));
    }
  }

  function showPhrase(words) {
    const ok = h('input', { type: 'checkbox', id: 'phrase-saved' });
    const next = h('button', { class: 'btn primary', id: 'phrase-continue', type: 'button', disabled: true, text: 'Continue', onclick: () => confirmPhrase(words) });
    ok.addEventListener('change', () => { next.disabled = !ok.checked; });
    show(
      h('h1', { id: 'onboard-title', tabindex: '-1', text: 'Your recovery phrase' }),
      h('p', { class: 'warning', role: 'note' }, icon('key'),
        h('span', { text: 'Write these 24 words down, in order, and keep them somewhere safe. They are the only way to restore your account, and anyone who has them can read your messages and act as you.' })),
      h('ol', { class: 'phrase', 'aria-label': 'Recovery phrase, 24 words' },
        words.map((w, i) => h('li', {}, h('span', { class: 'num', 'aria-hidden': 'true', text: String(i + 1) }), h('span', { class: 'word', text: w })))),
      h('label', { class: 'check' }, ok, h('span', { text: 'I have written down these 24 words' })),
      h('div', { class: 'actions' },
        h('button', { class: 'btn ghost', type: 'button', text: 'Back', onclick: welcome }), next));
  }

  function confirmPhrase(words) {
    const picks = [];
    while (picks.length < CONFIRM_WORDS) {
      const i = Math.floor(Math.random() * words.length);
      if (!picks.includes(i)) picks.push(i);
    }
    picks.sort((a, b) => a - b);
    const err = h('p', { class: 'error', id: 'confirm-error', role: 'alert' });
    const inputs = picks.map((i) => h('input', {
      type: 'text', id: 'confirm-word-' + (i + 1), 'data-index': i, autocomplete: 'off', autocapitalize: 'none',
      spellcheck: 'false', required: true, 'aria-describedby': 'confirm-error',
    }));
    const submit = h('button', { class: 'btn primary', id: 'confirm-phrase', type: 'submit', text: 'Create my account' });
    const form = h('form', { class: 'confirm', novalidate: true },
      picks.map((i, k) => h('div', { class: 'field' },
        h('label', { for: inputs[k].id, text: 'Word ' + (i + 1) }), inputs[k])),
      err,
      h('div', { class: 'actions' },
        h('button', { class: 'btn ghost', type: 'button', text: 'Show the words again', onclick: () => showPhrase(words) }), submit));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      for (let k = 0; k < picks.length; k++) {
        const got = inputs[k].value.trim().toLowerCase();
        const bad = got !== words[picks[k]];
        inputs[k].setAttribute('aria-invalid', String(bad));
        if (bad) {
          err.textContent = got === ''
            ? 'Type word ' + (picks[k] + 1) + ' of your recovery phrase.'
            : 'Word ' + (picks[k] + 1) + ' does not match. Check what you wrote down.';
          inputs[k].focus();
          return;
        }
      }
      await finish(words.join(' '), submit, err, 'Creating your account and joining the network…');
    });
    show(
      h('h1', { id: 'onboard-title', tabindex: '-1', text: 'Check your recovery phrase' }),
      h('p', { class: 'muted', text: 'To make sure you wrote it down, type these words from your recovery phrase.' }),
      form);
    inputs[0].focus();
  }

  function restore() {
    const ta = h('textarea', { id: 'restore-phrase', rows: 4, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', 'aria-describedby': 'restore-hint restore-error' });
    const err = h('p', { class: 'error', id: 'restore-error', role: 'alert' });
    const submit = h('button', { class: 'btn primary', id: 'restore-submit', type: 'submit', text: 'Restore account' });
    const form = h('form', { novalidate: true },
      h('div', { class: 'field' },
        h('label', { for: 'restore-phrase', text: 'Recovery phrase' }), ta,
        h('p', { class: 'hint', id: 'restore-hint', text: 'The 24 words, in order, separated by spaces.' })),
      err,
      h('div', { class: 'actions' },
        h('button', { class: 'btn ghost', type: 'button', text: 'Back', onclick: welcome }), submit));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      const phrase = ta.value.trim().split(/\s+/).filter(Boolean).join(' ');
      if (!phrase) {
        err.textContent = 'Type your 24-word recovery phrase.';
        ta.focus();
        return;
      }
      await finish(phrase, submit, err, 'Restoring your account…');
    });
    show(h('h1', { id: 'onboard-title', tabindex: '-1', text: 'Restore your account' }),
      h('p', { class: 'muted', text: 'Your account ID and keys come back from the phrase. Messages stored on this device before are not restored.' }),
      form);
    ta.focus();
  }

  async function finish(phrase, submit, err, busyText) {
    submit.disabled = true;
    const busy = h('p', { class: 'busy' }, spinner(busyText), h('span', { text: busyText }));
    err.after(busy);
    try {
      const acct = await api('POST', '/api/v1/account', { recovery_phrase: phrase, ...protection });
      done(acct);
    } catch (e) {
      busy.remove();
      submit.disabled = false;
      err.textContent = e.message;
    }
  }

  welcome();
}
