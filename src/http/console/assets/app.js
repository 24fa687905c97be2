// warden console: the core. Plain JavaScript, no build step, no
// dependencies. Every page is built with DOM calls (never innerHTML), so
// nothing the API returns is ever parsed as markup. The console is a
// client of the admin API (/api/v1) with the session cookie; changes
// carry the session's CSRF token.
'use strict';

const W = (window.W = {
  me: null,
  routes: [],
});

// el('button', {class: 'primary', onclick: f}, 'Create') builds an element.
W.el = function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else if (k === 'value') node.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'hidden') node[k] = Boolean(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
};
const el = W.el;

// An admin API error: the problem document's detail, and its field.
class ApiFailure extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `request failed (${status})`);
    this.status = status;
    this.field = problem && problem.field;
  }
}
W.ApiFailure = ApiFailure;

// Calls the admin API (or /console/session); JSON in and out.
W.api = async function api(method, path, body, extraHeaders) {
  const headers = Object.assign({ Accept: 'application/json' }, extraHeaders || {});
  if (method !== 'GET' && W.me) headers['X-CSRF-Token'] = W.me.csrf_token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401 && path !== '/console/session') {
    location.assign('/console/login');
    throw new ApiFailure(401, { detail: 'Your session has ended: sign in again.' });
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!r.ok) throw new ApiFailure(r.status, data);
  return data;
};

// Every page of a list (items + next_cursor), up to `max` items.
W.listAll = async function listAll(path, max) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await W.api('GET', path + (cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''));
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < (max || 1000));
  return items;
};

W.can = (p) => Boolean(W.me && W.me.permissions.includes(p));

W.toast = function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.classList.add('show');
  clearTimeout(W.toastTimer);
  W.toastTimer = setTimeout(() => t.classList.remove('show'), 3500);
};

// Times: "3 minutes ago" with the exact time as a tooltip.
W.when = function when(iso, never) {
  if (!iso) return el('span', { text: never || 'Never' });
  const t = new Date(iso);
  const s = Math.round((Date.now() - t.getTime()) / 1000);
  const abs = Math.abs(s);
  const [n, unit] = abs < 60 ? [abs, 'second'] : abs < 3600 ? [Math.round(abs / 60), 'minute']
    : abs < 86400 ? [Math.round(abs / 3600), 'hour'] : [Math.round(abs / 86400), 'day'];
  const span = `${n} ${unit}${n === 1 ? '' : 's'}`;
  const text = abs < 5 ? 'just now' : s > 0 ? `${span} ago` : `in ${span}`;
  return el('time', { datetime: iso, title: t.toString(), text });
};
// Dates: "Mar 2, 2027" (never 3/2/2027, which reads two ways), with the
// time when it is within two days (a grace period's end).
W.date = function date(iso, never) {
  if (!iso) return el('span', { text: never || 'Never' });
  const t = new Date(iso);
  const soon = Math.abs(t.getTime() - Date.now()) < 2 * 86400 * 1000;
  const text = soon
    ? t.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
    : t.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
  return el('time', { datetime: iso, title: t.toString(), text });
};

// A modal dialog (<dialog>: the page behind is inert and Escape closes
// it). Focus goes to its first field and back to the opener when it
// closes; the dialog is then removed, with any secret it showed.
W.dialog = function dialog(title, subtitle) {
  const opener = document.activeElement;
  const heading = el('h2', { id: `d-${Date.now()}`, text: title });
  const body = el('div', { class: 'dialog-body' }, heading, subtitle ? el('p', { class: 'sub' }, subtitle) : null);
  const d = el('dialog', { 'aria-labelledby': heading.id }, body);
  d.addEventListener('close', () => {
    d.remove();
    if (opener && opener.isConnected) opener.focus();
    if (d.onclosed) d.onclosed();
  });
  document.body.append(d);
  d.body = body;
  d.show = () => {
    d.showModal();
    const first = body.querySelector('input:not([type=hidden]):not([readonly]), select, textarea, button:not(:disabled)');
    if (first) first.focus();
  };
  return d;
};

// A field with its label: el('input'…) wrapped so the label names it.
let fieldSeq = 0;
W.field = function field(label, control, hint) {
  control.id = control.id || `f${++fieldSeq}`;
  const l = el('label', { for: control.id }, label, hint ? el('span', { class: 'hint' }, ` ${hint}`) : null);
  return el('div', { class: 'field' }, l, control);
};

// Shows an API failure in `where` (or as a toast).
W.fail = function fail(err, where) {
  const text = err instanceof ApiFailure ? err.message : `Something went wrong: ${err.message || err}`;
  if (where) {
    where.textContent = text;
    where.hidden = false;
  } else W.toast(text);
};
W.errorBox = () => el('p', { class: 'error', role: 'alert', hidden: true });

// The one-time secret panel: Client ID and Client Secret (masked, with
// Toggle visibility and Copy to clipboard) and the only-time warning.
W.secretPanel = function secretPanel(clientId, secret) {
  const input = el('input', { type: 'password', readonly: true, value: secret, 'aria-label': 'Client Secret', class: 'mono', spellcheck: 'false', autocomplete: 'off' });
  const toggle = el('button', { type: 'button', 'aria-pressed': 'false', onclick: () => {
    const show = input.type === 'password';
    input.type = show ? 'text' : 'password';
    toggle.setAttribute('aria-pressed', String(show));
  } }, 'Toggle visibility');
  const copy = el('button', { type: 'button', onclick: async () => {
    try {
      await navigator.clipboard.writeText(input.value);
      W.toast('Client secret copied');
    } catch (_) {
      input.type = 'text';
      input.select();
      W.toast('Copy it from the field (the browser refused the clipboard)');
    }
  } }, 'Copy to clipboard');
  copy.dataset.copy = '';
  const idInput = el('input', { readonly: true, value: clientId, 'aria-label': 'Client ID', class: 'mono' });
  return el('div', {},
    el('label', { for: (idInput.id = `cid${++fieldSeq}`) }, 'Client ID'), idInput,
    el('label', { for: (input.id = `sec${++fieldSeq}`) }, 'Client Secret'),
    el('div', { class: 'secret-row' }, input, toggle, copy),
    el('p', { class: 'warning', role: 'alert' }, 'This is the only time the secret will be shown. Save it somewhere safe before closing.'));
};

// Routing: #/accounts, #/accounts/<id>, #/roles, #/apis, #/team, #/audit.
W.route = function route(pattern, render) {
  W.routes.push({ pattern, render });
};

async function show() {
  const main = document.getElementById('main');
  // A dialog belongs to the page it was opened on.
  for (const d of document.querySelectorAll('dialog')) {
    d.onclosed = null;
    d.close();
  }
  const hash = location.hash.replace(/^#/, '') || '/accounts';
  for (const a of document.querySelectorAll('.top nav a')) {
    if (hash.startsWith(a.getAttribute('href').slice(1))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  for (const { pattern, render } of W.routes) {
    const m = hash.match(pattern);
    if (!m) continue;
    main.replaceChildren(el('p', { class: 'loading', text: 'Loading…' }));
    try {
      const view = await render(...m.slice(1).map((v) => (v === undefined ? v : decodeURIComponent(v))));
      main.replaceChildren(view);
      if (W.focusMain) main.focus();
    } catch (err) {
      main.replaceChildren(el('p', { class: 'error', role: 'alert' }, err.message || String(err)));
    }
    W.focusMain = true;
    return;
  }
  main.replaceChildren(el('p', { text: 'No such page.' }), el('a', { href: '#/accounts' }, 'Service Accounts'));
}
W.refresh = show;

async function start() {
  if (location.pathname === '/console/login') {
    // A link opened in a tab already on this page changes only the hash.
    window.addEventListener('hashchange', () => W.signInPage());
    return W.signInPage();
  }
  W.me = await W.api('GET', '/console/session');
  if (!W.me.signed_in) {
    W.me = null;
    return location.assign('/console/login');
  }
  const top = document.querySelector('.top');
  top.hidden = false;
  top.querySelector('.who').textContent = `${W.me.email || W.me.subject.replace(/^link:/, '')} · ${W.me.org}`;
  document.getElementById('sign-out').addEventListener('click', async () => {
    try { await W.api('DELETE', '/console/session'); } catch (_) { /* gone already */ }
    location.assign('/console/login');
  });
  window.addEventListener('hashchange', show);
  await show();
}

document.addEventListener('DOMContentLoaded', () => {
  // The skip link moves focus; as a plain #main link it would be a route.
  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    document.getElementById('main').focus();
  });
  start().catch((err) => {
    document.getElementById('main').replaceChildren(el('p', { class: 'error', role: 'alert' }, err.message || String(err)));
  });
});
