// The account's vault: an encrypted backup (created from Settings,
// restored from the onboarding screen), the recovery phrase shown again
// and the passphrase changed, each after the current passphrase.

import { api, token, ApiError } from './api.js';
import { h, toast, spinner } from './dom.js';
import { MIN_PASSPHRASE } from './passphrase.js';

// passphraseMessage words the daemon's passphrase errors: a wrong
// passphrase and an account without one are told apart.
function passphraseMessage(e) {
  switch (e.code) {
    case 'wrong_passphrase': return 'Wrong passphrase.';
    case 'no_passphrase': return 'This account has no passphrase set: leave the field empty.';
    case 'passphrase_required': return 'Type this account\'s passphrase.';
    case 'wrong_backup_passphrase': return 'Wrong backup passphrase.';
    case 'backup_damaged': return 'This backup file is damaged or was tampered with: it cannot be restored.';
  }
  return e.message;
}

function field(id, label, attrs) {
  const input = h('input', { type: 'password', id, spellcheck: 'false', maxlength: 1024, ...attrs });
  return { input, el: h('div', { class: 'field' }, h('label', { for: id, text: label }), input) };
}

// formDialog shows a modal form; submit gets the form and returns a node
// to show instead of the form (or nothing to close), or throws to show
// the error in the dialog.
function formDialog(id, title, intro, fields, okText, submit) {
  const err = h('p', { class: 'error', id: id + '-error', role: 'alert' });
  const ok = h('button', { class: 'btn primary', id: id + '-ok', type: 'submit', text: okText });
  const cancel = h('button', { class: 'btn ghost', type: 'button', text: 'Cancel' });
  const form = h('form', { novalidate: true }, h('h2', { id: id + '-title', text: title }),
    intro ? h('p', { class: 'muted', text: intro }) : null, fields, err, h('div', { class: 'actions' }, cancel, ok));
  const dlg = h('dialog', { class: 'dialog', id, 'aria-labelledby': id + '-title' }, form);
  cancel.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => dlg.remove());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    ok.disabled = true;
    const busy = h('p', { class: 'busy' }, spinner('Working…'), h('span', { text: 'Working… (deriving keys takes a moment)' }));
    err.after(busy);
    try {
      const result = await submit(form);
      if (!result) {
        dlg.close();
        return;
      }
      const close = h('button', { class: 'btn primary', id: id + '-close', type: 'button', text: 'Close', onclick: () => dlg.close() });
      form.replaceChildren(h('h2', { id: id + '-title', text: title }), result, h('div', { class: 'actions' }, close));
      close.focus();
    } catch (e) {
      err.textContent = e instanceof ApiError ? passphraseMessage(e) : e.message;
    } finally {
      busy.remove();
      ok.disabled = false;
    }
  });
  document.body.append(dlg);
  dlg.showModal();
  const first = form.querySelector('input');
  if (first) first.focus();
}

async function unprotected() {
  try { return (await api('GET', '/api/v1/account')).unprotected; } catch { return false; }
}

// createBackup asks for a backup passphrase (twice) and downloads the file.
async function createBackup() {
  const bare = await unprotected();
  const cur = field('backup-current', 'Your passphrase (this account\'s)', { autocomplete: 'current-password' });
  const p1 = field('backup-passphrase', 'Backup passphrase', { autocomplete: 'new-password' });
  const p2 = field('backup-passphrase-repeat', 'Type it again', { autocomplete: 'new-password' });
  formDialog('backup-dialog', 'Create a backup',
    'The backup holds your account, contacts, messages and settings, encrypted with a backup passphrase. You need both the file and that passphrase to restore it.',
    bare ? [p1.el, p2.el] : [cur.el, p1.el, p2.el], 'Create backup', async () => {
      if (!p1.input.value) throw new Error('Choose a passphrase for the backup.');
      if (p1.input.value !== p2.input.value) throw new Error('The two passphrases differ.');
      let resp;
      try {
        resp = await fetch('/api/v1/backup', {
          method: 'POST', cache: 'no-store',
          headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
          body: JSON.stringify({ passphrase: p1.input.value, current_passphrase: bare ? '' : cur.input.value }),
        });
      } catch {
        throw new Error('The Umbra daemon does not answer. Is it still running?');
      }
      if (!resp.ok) {
        let data = null;
        try { data = await resp.json(); } catch { data = null; }
        throw new ApiError((data && data.error) || ('The daemon answered ' + resp.status), resp.status, data && data.code);
      }
      const blob = await resp.blob();
      const name = (/filename="([^"]+)"/.exec(resp.headers.get('Content-Disposition') || '') || [])[1] || 'umbra-backup.umbrabak';
      const link = h('a', { id: 'backup-download', href: URL.createObjectURL(blob), download: name, 'data-bytes': String(blob.size), text: 'Save ' + name + ' again' });
      link.click();
      return h('div', {},
        h('p', { id: 'backup-done', text: 'Your backup (' + Math.ceil(blob.size / 1024) + ' KiB) was downloaded as ' + name + '. Keep it somewhere safe, apart from its passphrase.' }),
        h('p', {}, link));
    });
}

// showPhrase shows the recovery phrase after the passphrase.
async function showPhrase() {
  const bare = await unprotected();
  const p = field('phrase-passphrase', 'Passphrase', { autocomplete: 'current-password' });
  formDialog('phrase-dialog', 'Show your recovery phrase',
    bare ? 'This account has no passphrase. Make sure nobody is looking at your screen.'
      : 'Type your passphrase to see the 24 words. Make sure nobody is looking at your screen.',
    bare ? [] : [p.el], 'Show the phrase', async () => {
      const r = await api('POST', '/api/v1/account/recovery-phrase', { passphrase: bare ? '' : p.input.value });
      const words = r.recovery_phrase.split(' ');
      return h('div', {},
        h('p', { class: 'warning', role: 'note', text: 'Anyone who has these words can read your messages and act as you.' }),
        h('ol', { class: 'phrase', id: 'shown-phrase', 'aria-label': 'Recovery phrase, 24 words' },
          words.map((w, i) => h('li', {}, h('span', { class: 'num', 'aria-hidden': 'true', text: String(i + 1) }), h('span', { class: 'word', text: w })))));
    });
}

// changePassphrase changes (or, on an account without one, sets) the
// passphrase after the current one.
async function changePassphrase() {
  const bare = await unprotected();
  const old = field('change-old', 'Current passphrase', { autocomplete: 'current-password' });
  const p1 = field('change-new', 'New passphrase', { autocomplete: 'new-password', minlength: MIN_PASSPHRASE });
  const p2 = field('change-new-repeat', 'Type it again', { autocomplete: 'new-password', minlength: MIN_PASSPHRASE });
  formDialog('change-dialog', bare ? 'Set a passphrase' : 'Change your passphrase',
    'Your keys and messages on this computer are encrypted again with the new passphrase. It cannot be recovered.',
    bare ? [p1.el, p2.el] : [old.el, p1.el, p2.el], 'Change passphrase', async () => {
      if ([...p1.input.value].length < MIN_PASSPHRASE) throw new Error('A passphrase needs at least ' + MIN_PASSPHRASE + ' characters.');
      if (p1.input.value !== p2.input.value) throw new Error('The two new passphrases differ.');
      await api('POST', '/api/v1/account/passphrase/change', { old_passphrase: bare ? '' : old.input.value, new_passphrase: p1.input.value });
      toast('Passphrase changed. The daemon asks for the new one the next time it starts.');
      const banner = document.getElementById('unprotected-warning');
      if (banner) banner.remove();
      return null;
    });
}

// vaultCard is the Settings card for backups, the recovery phrase and
// the passphrase.
export function vaultCard() {
  return h('div', { class: 'card', id: 'vault' },
    h('h2', { text: 'Backup and recovery' }),
    h('p', { class: 'muted', text: 'A backup restores your account with its contacts and messages on a new computer. The recovery phrase restores the account alone.' }),
    h('div', { class: 'actions' },
      h('button', { class: 'btn', id: 'create-backup', type: 'button', text: 'Create backup', onclick: createBackup }),
      h('button', { class: 'btn', id: 'show-phrase', type: 'button', text: 'Show recovery phrase', onclick: showPhrase }),
      h('button', { class: 'btn', id: 'change-passphrase', type: 'button', text: 'Change passphrase', onclick: changePassphrase })));
}

// restoreBackup is the onboarding screen that restores an account from a
// backup file; show renders the card, back returns, done gets the status.
export function restoreBackup(show, back, done) {
  const file = h('input', { type: 'file', id: 'backup-file', accept: '.umbrabak,application/octet-stream', 'aria-describedby': 'restore-backup-error' });
  const pass = h('input', { type: 'password', id: 'restore-backup-passphrase', autocomplete: 'off', spellcheck: 'false', maxlength: 1024 });
  const err = h('p', { class: 'error', id: 'restore-backup-error', role: 'alert' });
  const submit = h('button', { class: 'btn primary', id: 'restore-backup-submit', type: 'submit', text: 'Restore backup' });
  const form = h('form', { novalidate: true },
    h('div', { class: 'field' }, h('label', { for: file.id, text: 'Backup file' }), file),
    h('div', { class: 'field' }, h('label', { for: pass.id, text: 'Backup passphrase' }), pass,
      h('p', { class: 'hint', text: 'This computer keeps the restored account encrypted with the same passphrase (or the daemon\'s own).' })),
    err,
    h('div', { class: 'actions' }, h('button', { class: 'btn ghost', type: 'button', text: 'Back', onclick: back }), submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    if (!file.files.length) { err.textContent = 'Choose your backup file.'; file.focus(); return; }
    if (!pass.value) { err.textContent = 'Type the backup\'s passphrase.'; pass.focus(); return; }
    submit.disabled = true;
    const busy = h('p', { class: 'busy' }, spinner('Restoring'), h('span', { text: 'Restoring your account…' }));
    err.after(busy);
    try {
      let resp;
      try {
        resp = await fetch('/api/v1/account/restore', {
          method: 'POST', cache: 'no-store', body: file.files[0],
          headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/octet-stream', 'X-Umbra-Backup-Passphrase': pass.value },
        });
      } catch {
        throw new Error('The Umbra daemon does not answer. Is it still running?');
      }
      let data = null;
      try { data = await resp.json(); } catch { data = null; }
      if (!resp.ok) throw new ApiError((data && data.error) || ('The daemon answered ' + resp.status), resp.status, data && data.code);
      done(data);
    } catch (e) {
      busy.remove();
      submit.disabled = false;
      err.textContent = e instanceof ApiError ? passphraseMessage(e) : e.message;
    }
  });
  show(h('h1', { id: 'onboard-title', tabindex: '-1', text: 'Restore from a backup' }),
    h('p', { class: 'muted', text: 'Your account, contacts, messages and settings come back from the backup file.' }),
    form);
  file.focus();
}
