// Files, images and voice notes: the composer's attach and microphone
// buttons, drag-and-drop and paste, and how a message's file shows.
//
// A file is sent as multipart/form-data to POST /api/v1/files (the part
// "file" last); its progress then comes as ordinary message events. A
// file on this device is read from GET /api/v1/messages/{id}/file with the
// Authorization header, like every call, into a blob: URL that <img>,
// <audio>, <video> and the Save link use. The app does not use the
// daemon's session cookie: the browser would send it to every server on
// 127.0.0.1, whatever its port (see docs/ui.md).

import { api, token, ApiError } from './api.js';
import { h, icon, toast } from './dom.js';

export const MAX_FILE = 100 * 1024 * 1024; // files.MaxFileSize
const MAX_THUMB = 32 * 1024; // client.MaxThumb
const THUMB_SIDE = 320;

// ---- a file's bytes, as a blob: URL ----

export function fileURL(id, download) {
  return '/api/v1/messages/' + encodeURIComponent(id) + '/file' + (download ? '?download=1' : '');
}

// Blobs read from the daemon, by message ID, with the elements that show
// them: kept across re-renders of the chat (which rebuild every message),
// so a playing voice note or a loaded picture stays as it is. Past
// MAX_HELD bytes the oldest not shown in the last 10 s go (their URLs
// revoked).
const MAX_HELD = 256 * 1024 * 1024;
const held = new Map(); // message ID -> { url: Promise<string>, size, els: Map }
let heldBytes = 0;

// blobURL reads a message's file once and gives its blob: URL.
function blobURL(id, size) {
  let e = held.get(id);
  if (!e) {
    e = { size: size || 0, els: new Map() };
    e.url = fetch(fileURL(id), { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' })
      .then((r) => (r.ok ? r.blob() : Promise.reject(new Error('the daemon answered ' + r.status))))
      .then((b) => URL.createObjectURL(b));
    // A failed read is tried again at a render 5 s on.
    e.url.catch(() => setTimeout(() => { if (held.get(id) === e) forget(id); }, 5000));
    held.set(id, e);
    heldBytes += e.size;
    const now = Date.now();
    for (const [old, o] of held) { // not what the chat showed just now
      if (heldBytes <= MAX_HELD) break;
      if (old !== id && now - o.used > 10000) forget(old);
    }
  }
  e.used = Date.now();
  return e;
}

// forgetFile lets a message's file go from the page (the message was
// deleted or its time is up).
export function forgetFile(id) { forget(id); }

function forget(id) {
  const e = held.get(id);
  if (!e) return;
  held.delete(id);
  heldBytes -= e.size;
  e.url.then((u) => URL.revokeObjectURL(u), () => {});
}

// keep gives the element of kind for a message, made once by make and
// given its source when the file is read.
function keep(m, kind, make, attr) {
  const e = blobURL(m.id, m.file.size);
  let el = e.els.get(kind);
  if (!el) {
    el = make();
    const media = attr ? el.querySelector(attr) || el : el;
    media.dataset.src = fileURL(m.id); // what it shows (the tests look)
    e.url.then((u) => { media.src = u; }, (err) => { el.dataset.error = err.message; });
    e.els.set(kind, el);
  }
  return el;
}

// saveFile saves a message's file with its name (an <a download> click
// on its blob: URL).
async function saveFile(m) {
  try {
    const url = await blobURL(m.id, m.file.size).url;
    const a = h('a', { href: url, download: m.file.name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) {
    toast('Could not read the file: ' + e.message, 'error');
  }
}

// ---- formatting ----

export function sizeText(n) {
  if (!(n >= 0)) return '';
  if (n < 1024) return n + ' B';
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ' + units[i];
}

export function durationText(ms) {
  const s = Math.max(0, Math.round((ms || 0) / 1000));
  return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
}

// kindOf sorts a file into image, audio, video or file by its MIME type.
export function kindOf(f) {
  const t = (f && f.type) || '';
  if (t.startsWith('image/') && !t.includes('svg')) return 'image';
  if (t.startsWith('audio/')) return 'audio';
  if (t.startsWith('video/')) return 'video';
  return 'file';
}

function isVoice(f) { return kindOf(f) === 'audio' && /^voice-\d{8}-\d{6}\./.test(f.name || ''); }

// fileLabel names a message's file in one line (the chat list, quotes).
export function fileLabel(m) {
  const f = m.file;
  if (!f) return '';
  if (isVoice(f)) return 'Voice message (' + durationText(f.duration_ms) + ')';
  const k = kindOf(f);
  return (k === 'image' ? 'Picture: ' : k === 'video' ? 'Video: ' : k === 'audio' ? 'Audio: ' : 'File: ') + f.name;
}

// ---- sending ----

// sendFile sends one file (a File or Blob with a name) to a conversation
// ("group:ID" or an account ID) with optional caption and metadata
// (duration in ms). onProgress(sent, total) follows the upload to the
// daemon. It returns the new message.
export async function sendFile(to, file, caption, extra, onProgress) {
  if (file.size > MAX_FILE) throw new ApiError(file.name + ' is ' + sizeText(file.size) + ': files can be at most 100 MB.', 413);
  const meta = Object.assign(extra && extra.duration ? {} : await mediaMeta(file), extra || {}); // a voice note's length is known
  const fd = new FormData();
  fd.append('to', to);
  if (caption) fd.append('caption', caption);
  fd.append('name', file.name || 'file');
  if (file.type) fd.append('type', file.type);
  for (const k of ['width', 'height', 'duration']) if (meta[k] > 0) fd.append(k, String(Math.round(meta[k])));
  if (meta.thumb) fd.append('thumb', meta.thumb, 'thumb.jpg');
  fd.append('file', file, file.name || 'file'); // last: the daemon streams it
  return upload(fd, onProgress);
}

// upload posts the form with progress (fetch has no upload progress).
function upload(fd, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', '/api/v1/files');
    x.setRequestHeader('Authorization', 'Bearer ' + token);
    x.responseType = 'json';
    if (onProgress) x.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    x.onload = () => {
      const d = x.response;
      if (x.status >= 200 && x.status < 300 && d) resolve(d);
      else reject(new ApiError((d && d.error) || ('The daemon answered ' + x.status), x.status, d && d.code));
    };
    x.onerror = () => reject(new ApiError('The Umbra daemon does not answer. Is it still running?', 0));
    x.send(fd);
  });
}

// mediaMeta reads what the message tells of a picture or video: its size
// and a small JPEG thumbnail; of audio and video, the duration. Nothing
// fails here: a file the browser cannot decode goes without.
async function mediaMeta(file) {
  const k = kindOf(file);
  try {
    if (k === 'image') {
      const bmp = await createImageBitmap(file);
      const meta = { width: bmp.width, height: bmp.height, thumb: await thumbOf(bmp, bmp.width, bmp.height) };
      bmp.close();
      return meta;
    }
    if (k === 'video' || k === 'audio') return await avMeta(file, k);
  } catch { /* no preview */ }
  return {};
}

// thumbOf draws src scaled to at most THUMB_SIDE a side as a JPEG of at
// most MAX_THUMB bytes, lowering the quality (then the size) to fit.
async function thumbOf(src, w, ht) {
  if (!w || !ht) return null;
  let side = THUMB_SIDE;
  for (let round = 0; round < 4; round++, side = Math.round(side * 0.7)) {
    const s = Math.min(1, side / Math.max(w, ht));
    const c = document.createElement('canvas');
    c.width = Math.max(1, Math.round(w * s));
    c.height = Math.max(1, Math.round(ht * s));
    const ctx = c.getContext('2d');
    ctx.fillStyle = '#fff'; // transparent PNGs on white, not black
    ctx.fillRect(0, 0, c.width, c.height);
    ctx.drawImage(src, 0, 0, c.width, c.height);
    for (const q of [0.8, 0.65, 0.5, 0.35]) {
      const b = await new Promise((res) => c.toBlob(res, 'image/jpeg', q));
      if (b && b.size <= MAX_THUMB) return b;
    }
  }
  return null;
}

// avMeta loads a video or audio file in a detached element for its
// duration and, for a video, a poster frame; bounded to 4 s.
function avMeta(file, k) {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(file);
    const el = document.createElement(k);
    const meta = {};
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      el.removeAttribute('src');
      el.load();
      URL.revokeObjectURL(url);
      resolve(meta);
    };
    const timer = setTimeout(done, 4000);
    el.muted = true;
    el.preload = 'auto';
    el.onerror = done;
    el.onloadedmetadata = () => {
      if (isFinite(el.duration)) meta.duration = el.duration * 1000;
      if (k !== 'video') { done(); return; }
      meta.width = el.videoWidth;
      meta.height = el.videoHeight;
      el.currentTime = Math.min(0.5, (el.duration || 1) / 2);
    };
    el.onseeked = async () => {
      try { meta.thumb = await thumbOf(el, el.videoWidth, el.videoHeight); } catch { /* none */ }
      done();
    };
    el.src = url;
  });
}

// ---- the composer's buttons, drag-and-drop and paste ----

// attachUI adds file sending to a chat: opts.form (the composer form),
// opts.section (where files may be dropped), opts.textarea (paste; its
// text becomes the first file's caption), opts.target() (the open
// conversation), opts.sent(m) (a message the daemon took) and
// opts.canCaption() (false while the composer edits a message).
export function attachUI(opts) {
  const input = h('input', { type: 'file', id: 'file-input', multiple: true, hidden: true, tabindex: '-1' });
  const attachBtn = h('button', { class: 'icon-btn attach-btn', type: 'button', id: 'attach-btn', 'aria-label': 'Attach a file', title: 'Attach a file', onclick: () => input.click() }, clipIcon());
  const micBtn = h('button', { class: 'icon-btn mic-btn', type: 'button', id: 'mic-btn', 'aria-label': 'Record a voice message', title: 'Record a voice message' }, micIcon());
  const status = h('div', { class: 'file-status', id: 'file-status', role: 'status', 'aria-live': 'polite', hidden: true });
  const recorder = new VoiceRecorder(status, micBtn, (blob, name, ms) => send([blob], { name, ms }));
  micBtn.addEventListener('click', () => recorder.toggle());
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    send(files);
  });

  // send sends files one after the other, showing each upload's progress.
  async function send(files, voice) {
    const to = opts.target();
    if (!to || !files.length) return;
    for (const f of files) {
      if (f.size > MAX_FILE) {
        showError(status, '"' + (f.name || 'file') + '" is ' + sizeText(f.size) + ': files can be at most 100 MB.');
        return;
      }
    }
    let caption = '';
    if (!voice && opts.textarea.value.trim() && (!opts.canCaption || opts.canCaption())) {
      caption = opts.textarea.value.trim();
      opts.textarea.value = '';
      opts.textarea.dispatchEvent(new Event('input'));
    }
    for (const f0 of files) {
      let f = f0;
      let extra = null;
      if (voice) {
        f = new File([f0], voice.name, { type: f0.type });
        extra = { duration: voice.ms };
      }
      const bar = h('progress', { max: 1, value: 0 });
      status.replaceChildren(h('span', { text: 'Sending ' + f.name + '…' }), bar);
      status.hidden = false;
      status.dataset.kind = 'progress';
      try {
        const m = await sendFile(to, f, caption, extra, (a, b) => { bar.value = b ? a / b : 0; });
        caption = '';
        opts.sent(m);
        status.hidden = true;
      } catch (e) {
        showError(status, 'Could not send ' + f.name + ': ' + e.message);
        return;
      }
    }
  }

  // Drag-and-drop onto the conversation.
  let depth = 0;
  const hasFiles = (ev) => ev.dataTransfer && [...ev.dataTransfer.types].includes('Files');
  opts.section.addEventListener('dragenter', (ev) => {
    if (!hasFiles(ev) || opts.form.hidden) return;
    depth++;
    opts.section.classList.add('drop-target');
  });
  opts.section.addEventListener('dragleave', () => {
    if (depth > 0 && --depth === 0) opts.section.classList.remove('drop-target');
  });
  opts.section.addEventListener('dragover', (ev) => {
    if (!hasFiles(ev) || opts.form.hidden) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'copy';
  });
  opts.section.addEventListener('drop', (ev) => {
    depth = 0;
    opts.section.classList.remove('drop-target');
    if (!hasFiles(ev) || opts.form.hidden) return;
    ev.preventDefault();
    send([...ev.dataTransfer.files]);
  });
  // Paste of files or pictures into the composer.
  opts.textarea.addEventListener('paste', (ev) => {
    const files = ev.clipboardData ? [...ev.clipboardData.files] : [];
    if (!files.length) return;
    ev.preventDefault();
    send(files);
  });
  return { input, attachBtn, micBtn, status, recorder, send };
}

function showError(status, text) {
  status.replaceChildren(h('span', { class: 'file-error', role: 'alert', text }),
    h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Dismiss', title: 'Dismiss', text: '✕', onclick: () => { status.hidden = true; } }));
  status.dataset.kind = 'error';
  status.hidden = false;
}

// ---- voice notes ----

const VOICE_TYPES = ['audio/webm;codecs=opus', 'audio/webm', 'audio/ogg;codecs=opus', 'audio/mp4'];

// VoiceRecorder records from the microphone with MediaRecorder, showing
// the elapsed time with Send and Cancel; onDone(blob, name, ms) gets the
// recording.
class VoiceRecorder {
  constructor(status, btn, onDone) {
    this.status = status;
    this.btn = btn;
    this.onDone = onDone;
    this.rec = null;
  }

  toggle() { if (this.rec) this.stop(true); else this.start(); }

  async start() {
    if (!window.MediaRecorder || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError(this.status, 'This browser cannot record audio.');
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      const denied = e && (e.name === 'NotAllowedError' || e.name === 'SecurityError');
      showError(this.status, denied
        ? 'Umbra may not use the microphone. Allow it in the browser\'s site settings to record voice messages.'
        : 'No microphone to record from (' + ((e && e.message) || 'unknown error') + ').');
      return;
    }
    const type = VOICE_TYPES.find((t) => MediaRecorder.isTypeSupported(t)) || '';
    let rec;
    try {
      rec = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    } catch (e) {
      stream.getTracks().forEach((t) => t.stop());
      showError(this.status, 'Cannot record: ' + e.message);
      return;
    }
    const chunks = [];
    const started = Date.now();
    this.rec = rec;
    this.keep = false;
    rec.ondataavailable = (ev) => { if (ev.data && ev.data.size) chunks.push(ev.data); };
    rec.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      clearInterval(this.timer);
      this.rec = null;
      this.btn.classList.remove('recording');
      this.btn.setAttribute('aria-label', 'Record a voice message');
      this.status.hidden = true;
      const ms = Date.now() - started;
      if (!this.keep || !chunks.length) return;
      const mime = (rec.mimeType || type || 'audio/webm').split(';')[0];
      const ext = mime === 'audio/ogg' ? 'ogg' : mime === 'audio/mp4' ? 'm4a' : 'webm';
      this.onDone(new Blob(chunks, { type: mime }), voiceName(new Date(started), ext), ms);
    };
    rec.start(250);
    this.btn.classList.add('recording');
    this.btn.setAttribute('aria-label', 'Stop and send the voice message');
    const clock = h('span', { class: 'rec-time', id: 'rec-time', text: '0:00' });
    this.status.replaceChildren(h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), h('span', { text: 'Recording ' }), clock,
      h('button', { class: 'btn sm ghost', type: 'button', id: 'rec-cancel', text: 'Cancel', onclick: () => this.stop(false) }),
      h('button', { class: 'btn sm primary', type: 'button', id: 'rec-send', text: 'Send', onclick: () => this.stop(true) }));
    this.status.dataset.kind = 'recording';
    this.status.hidden = false;
    this.timer = setInterval(() => {
      if (!this.status.isConnected) this.stop(false); // the chat was left
      clock.textContent = durationText(Date.now() - started);
    }, 250);
  }

  // stop ends the recording; keep sends it.
  stop(keep) {
    if (!this.rec) return;
    this.keep = keep;
    if (this.rec.state !== 'inactive') this.rec.stop();
  }
}

function voiceName(d, ext) {
  const p = (n) => String(n).padStart(2, '0');
  return 'voice-' + d.getFullYear() + p(d.getMonth() + 1) + p(d.getDate()) + '-' + p(d.getHours()) + p(d.getMinutes()) + p(d.getSeconds()) + '.' + ext;
}

// ---- showing a message's file ----

// onHere: the file is on this device (received whole, or ours and not failed).
function onHere(m) {
  const f = m.file;
  return f.state === 'done' || (m.outgoing && f.state !== 'failed');
}

function thumbURL(f) { return f.thumb ? 'data:image/jpeg;base64,' + f.thumb : ''; }

// fileEls draws a message's file. update(m) takes a message the daemon
// answered (a download asked for).
export function fileEls(m, update) {
  const f = m.file;
  const k = kindOf(f);
  const here = onHere(m);
  const box = h('div', { class: 'file file-' + k + (isVoice(f) ? ' file-voice' : ''), 'data-state': f.state, 'data-kind': k });
  if (k === 'image' && (here || f.thumb)) box.append(imageEl(m, here));
  else if (k === 'video' && here) box.append(keep(m, 'video', () => h('video', { class: 'file-video', controls: true, preload: 'metadata', poster: thumbURL(f) || false, width: f.width || false, height: f.height || false })));
  else if (k === 'audio' && here) {
    box.append(h('div', { class: 'file-audio-row' },
      isVoice(f) ? h('span', { class: 'file-voice-label', title: 'Voice message' }, micIcon(), durationText(f.duration_ms)) : h('span', { class: 'file-name', text: f.name }),
      keep(m, 'audio', () => h('audio', { class: 'file-audio', controls: true, preload: 'metadata' }))));
  } else box.append(cardEl(m, update));
  for (const el of [progressEl(m), errorEl(m)]) if (el) box.append(el);
  return box;
}

function imageEl(m, here) {
  const f = m.file;
  const dims = { width: f.width || false, height: f.height || false };
  if (!here) return h('img', Object.assign({ class: 'file-img file-thumb', alt: f.name, src: thumbURL(f) }, dims));
  const thumb = thumbURL(f);
  return keep(m, 'img', () => {
    const img = h('img', Object.assign({ class: 'file-img', alt: f.name, decoding: 'async' }, dims));
    // The thumbnail shows until the picture has loaded.
    if (thumb) img.style.backgroundImage = 'url("' + thumb + '")';
    img.addEventListener('load', () => { img.style.backgroundImage = ''; });
    const btn = h('button', { class: 'file-img-btn', type: 'button', 'aria-label': 'Show ' + f.name + ' full size', title: 'Show full size', onclick: () => showFull(m) }, img);
    return btn;
  }, 'img');
}

// showFull shows a picture full size in a dialog.
async function showFull(m) {
  let url;
  try { url = await blobURL(m.id, m.file.size).url; } catch (e) { toast(e.message, 'error'); return; }
  const d = h('dialog', { class: 'lightbox', 'aria-label': m.file.name },
    h('img', { src: url, alt: m.file.name }),
    h('div', { class: 'lightbox-bar' },
      h('span', { class: 'file-name', text: m.file.name + ' · ' + sizeText(m.file.size) }),
      h('button', { class: 'btn sm ghost', type: 'button', text: 'Save', onclick: () => saveFile(m) }),
      h('button', { class: 'btn sm primary', type: 'button', text: 'Close', onclick: () => d.close() })));
  d.addEventListener('close', () => d.remove());
  d.addEventListener('click', (ev) => { if (ev.target === d) d.close(); });
  document.body.append(d);
  d.showModal();
}

// cardEl is a file as a card: name, size, type, and what can be done.
function cardEl(m, update) {
  const f = m.file;
  let action = null;
  if (onHere(m)) {
    action = h('button', { class: 'btn sm file-save', type: 'button', 'data-src': fileURL(m.id, true), text: 'Save', onclick: () => saveFile(m) });
  } else if (!m.outgoing && (f.state === 'ready' || f.state === 'failed')) {
    action = h('button', { class: 'btn sm file-download', type: 'button', text: f.state === 'failed' ? 'Try again' : 'Download', onclick: (ev) => download(m, ev.currentTarget, update) });
  }
  return h('div', { class: 'file-card' },
    h('span', { class: 'file-icon', 'aria-hidden': 'true' }, kindOf(f) === 'file' ? docIcon() : kindOf(f) === 'audio' ? micIcon() : clipIcon()),
    h('span', { class: 'file-info' },
      h('span', { class: 'file-name', text: f.name, title: f.name }),
      h('span', { class: 'file-sub', text: sizeText(f.size) + ' · ' + (f.type || 'file') })),
    action);
}

async function download(m, btn, update) {
  btn.disabled = true;
  try {
    update(await api('POST', '/api/v1/messages/' + encodeURIComponent(m.id) + '/download'));
  } catch (e) {
    btn.disabled = false;
    toast('Could not download: ' + e.message, 'error');
  }
}

function progressEl(m) {
  const f = m.file;
  const up = m.outgoing && f.state === 'uploading';
  const down = f.state === 'downloading';
  if (!up && !down) return null;
  const pct = f.size ? Math.min(100, Math.floor(100 * (f.done || 0) / f.size)) : 0;
  const label = (up ? 'Uploading ' : 'Downloading ') + pct + '% of ' + sizeText(f.size);
  return h('div', { class: 'file-progress', 'data-dir': up ? 'up' : 'down' },
    h('progress', { max: 100, value: pct, 'aria-label': label }),
    h('span', { class: 'file-sub', text: label }));
}

function errorEl(m) {
  const f = m.file;
  if (f.state !== 'failed') return null;
  return h('p', { class: 'file-failed', role: 'alert', text: (m.outgoing ? 'Upload failed: ' : 'Download failed: ') + (f.error || 'unknown error') });
}

// ---- icons ----

function stroke(d) {
  const el = icon('x');
  el.firstChild.setAttribute('d', d);
  return el;
}
function clipIcon() { return stroke('M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5'); }
function micIcon() { return stroke('M12 2a3 3 0 0 0-3 3v7a3 3 0 0 0 6 0V5a3 3 0 0 0-3-3zM19 10v2a7 7 0 0 1-14 0v-2M12 19v4M8 23h8'); }
function docIcon() { return stroke('M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zM14 2v6h6M8 13h8M8 17h8'); }
