// The account's passphrase: choosing one during onboarding, unlocking an
// account whose daemon was started without it, and the warning shown while
// the open account has none (with a dialog to set one).

import { api } from './api.js';
import { h, icon, spinner, toast } from './dom.js';

export const MIN_PASSPHRASE = 8;

export const UNPROTECTED_TEXT = 'This account is not protected by a passphrase: anyone who can read this ' +
  'computer\'s files can read your messages and take over your account.';

// passphraseFields makes the two password inputs and a check() that returns
// the passphrase, or '' after showing what is wrong in err.
function passphraseFields(prefix, err) {
  const attrs = (id) => ({
    type: 'password', id, autocomplete: 'new-password', spellcheck: 'false', minlength: MIN_PASSPHRASE,
    maxlength: 1024, 'aria-describedby': prefix + '-hint ' + err.id,
  });
  const pass = h('input', attrs(prefix));
  const again = h('input', attrs(prefix + '-repeat'));
  const fields = [
    h('div', { class: 'field' },
      h('label', { for: pass.id, text: 'Passphrase' }), pass,
      h('p', { class: 'hint', id: prefix + '-hint', text: 'At least ' + MIN_PASSPHRASE + ' characters. A few unrelated words are easy to type and hard to guess.' })),
    h('div', { class: 'field' }, h('label', { for: again.id, text: 'Type it again' }), again),
  ];
  const check = () => {
    err.textContent = '';
    pass.setAttribute('aria-invalid', 'false');
    again.setAttribute('aria-invalid', 'false');
    if ([...pass.value].length < MIN_PASSPHRASE) {
      err.textContent = 'A passphrase needs at least ' + MIN_PASSPHRASE + ' characters.';
      pass.setAttribute('aria-invalid', 'true');
      pass.focus();
      return '';
    }
    if (again.value !== pass.value) {
      err.textContent = 'The two passphrases differ.';
      again.setAttribute('aria-invalid', 'true');
      again.focus();
      return '';
    }
    return pass.value;
  };
  return { fields, check, first: pass };
}

// choosePassphrase is the onboarding step that protects the new account.
// show renders the card's content; next gets {passphrase} or
// {no_passphrase: true} (only after the user confirmed the warning).
export function choosePassphrase(show, back, next) {
  const err = h('p', { class: 'error', id: 'passphrase-error', role: 'alert' });
  const pf = passphraseFields('passphrase', err);
  const form = h('form', { class: 'passphrase-form', novalidate: true },
    pf.fields, err,
    h('div', { class: 'actions' },
      h('button', { class: 'btn ghost', type: 'button', text: 'Back', onclick: back }),
      h('button', { class: 'btn primary', id: 'passphrase-continue', type: 'submit', text: 'Continue' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = pf.check();
    if (p) next({ passphrase: p });
  });

  const understood = h('input', { type: 'checkbox', id: 'no-passphrase-ok' });
  const goBare = h('button', {
    class: 'btn danger', id: 'no-passphrase-continue', type: 'button', disabled: true,
    text: 'Continue without a passphrase', onclick: () => next({ no_passphrase: true }),
  });
  understood.addEventListener('change', () => { goBare.disabled = !understood.checked; });
  const risk = h('div', { class: 'no-passphrase', id: 'no-passphrase', hidden: true },
    h('p', { class: 'warning', role: 'note' }, icon('lock'), h('span', { text: UNPROTECTED_TEXT })),
    h('label', { class: 'check' }, understood,
      h('span', { text: 'I understand: this account will not be protected on this computer' })),
    h('div', { class: 'actions' }, goBare));
  const skip = h('button', {
    class: 'btn link', id: 'skip-passphrase', type: 'button', text: 'I do not want a passphrase…',
    onclick: () => { risk.hidden = false; skip.hidden = true; understood.focus(); },
  });

  show(
    h('h1', { id: 'onboard-title', tabindex: '-1', text: 'Protect this account with a passphrase' }),
    h('p', { class: 'muted', text: 'Your keys and messages are kept on this computer, encrypted with this passphrase. ' +
      'The daemon asks for it each time it starts (or reads it from UMBRA_PASSPHRASE). ' +
      'It cannot be recovered: if you forget it, restore the account from its recovery phrase.' }),
    form, skip, risk);
  pf.first.focus();
}

// unlock is the screen of an account whose database waits for its
// passphrase; done gets the account status once it is open.
export function unlock(root, done) {
  const input = h('input', {
    type: 'password', id: 'unlock-passphrase', autocomplete: 'current-password', spellcheck: 'false',
    maxlength: 1024, required: true, 'aria-describedby': 'unlock-error',
  });
  const err = h('p', { class: 'error', id: 'unlock-error', role: 'alert' });
  const submit = h('button', { class: 'btn primary', id: 'unlock-submit', type: 'submit', text: 'Unlock' });
  const form = h('form', { novalidate: true },
    h('div', { class: 'field' }, h('label', { for: input.id, text: 'Passphrase' }), input), err,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    if (!input.value) {
      err.textContent = 'Type your passphrase.';
      input.focus();
      return;
    }
    submit.disabled = true;
    const busy = h('p', { class: 'busy' }, spinner('Opening your account…'), h('span', { text: 'Opening your account…' }));
    err.after(busy);
    try {
      done(await api('POST', '/api/v1/unlock', { passphrase: input.value }));
    } catch (e) {
      busy.remove();
      submit.disabled = false;
      err.textContent = e.message;
      input.select();
      input.focus();
    }
  });
  root.replaceChildren(h('div', { class: 'onboard' }, h('main', { class: 'onboard-card', 'aria-labelledby': 'onboard-title' },
    h('div', { class: 'brand brand-lg' }, h('img', { src: 'icon.svg', alt: '', width: 44, height: 44 }), h('span', { text: 'Umbra' })),
    h('h1', { id: 'onboard-title', tabindex: '-1', text: 'Unlock your account' }),
    h('p', { class: 'muted', text: 'This account is protected by a passphrase, and the daemon was started without it. Type it to open your messages.' }),
    form)));
  input.focus();
}

// unprotectedBanner is the warning shown at the top of the app while the
// open account has no passphrase; onProtected runs once one is set.
export function unprotectedBanner(onProtected) {
  const banner = h('div', { class: 'unprotected', id: 'unprotected-warning', role: 'alert' },
    icon('lock'),
    h('p', {}, h('strong', { text: UNPROTECTED_TEXT }), ' ',
      h('span', { text: 'Set a passphrase: the daemon then asks for it when it starts (or reads UMBRA_PASSPHRASE).' })),
    h('button', { class: 'btn sm', id: 'set-passphrase', type: 'button', text: 'Set a passphrase', onclick: () => setDialog(banner, onProtected) }));
  return banner;
}

function setDialog(banner, onProtected) {
  const err = h('p', { class: 'error', id: 'set-passphrase-error', role: 'alert' });
  const pf = passphraseFields('new-passphrase', err);
  const ok = h('button', { class: 'btn primary', id: 'set-passphrase-save', type: 'submit', text: 'Set passphrase' });
  const cancel = h('button', { class: 'btn ghost', type: 'button', text: 'Cancel' });
  const form = h('form', { novalidate: true },
    h('h2', { id: 'dialog-title', text: 'Protect this account' }),
    h('p', { class: 'muted', text: 'Your keys and messages on this computer are encrypted again with this passphrase. Keep it safe: it cannot be recovered.' }),
    pf.fields, err, h('div', { class: 'actions' }, cancel, ok));
  const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'dialog-title' }, form);
  cancel.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => dlg.remove());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const p = pf.check();
    if (!p) return;
    ok.disabled = true;
    try {
      const st = await api('POST', '/api/v1/account/passphrase', { passphrase: p });
      dlg.close();
      if (!st.unprotected) {
        banner.remove();
        onProtected();
        toast('Passphrase set. The daemon asks for it the next time it starts.');
      }
    } catch (e) {
      ok.disabled = false;
      err.textContent = e.message;
    }
  });
  document.body.append(dlg);
  dlg.showModal();
  pf.first.focus();
}
