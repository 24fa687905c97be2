// warden console: the pages. Each renders from the admin API's answers;
// each change is one admin API call, so the API's rules decide.
'use strict';

(() => {
  const { el, api } = W;
  const EXPIRY = [['never', 'Never expires'], ['30d', '30 days'], ['60d', '60 days'], ['90d', '90 days'], ['180d', '180 days'], ['1y', '1 year']];
  const enc = encodeURIComponent;

  // ---- Sign-in ---------------------------------------------------------
  W.signInPage = async function signInPage() {
    const main = document.getElementById('main');
    const box = el('div', { class: 'signin' }, el('h1', { text: 'Sign in to warden' }));
    const error = W.errorBox();
    main.replaceChildren(box);
    const token = new URLSearchParams(location.hash.slice(1)).get('token');
    if (token) {
      // The link's token is in the fragment, which never reaches a server
      // log; it is posted once, then dropped from the address bar.
      history.replaceState(null, '', '/console/login');
      box.append(el('p', { text: 'Signing you in…' }));
      try {
        await api('POST', '/console/session', { token });
        location.assign('/console#/accounts');
        return;
      } catch (err) {
        box.lastChild.remove();
        W.fail(err, error);
      }
    }
    box.append(error, el('p', { class: 'sub', text: 'Use the sign-in link your operator gave you (warden console link), or your organization’s single sign-on.' }));
    if (document.querySelector('meta[name="warden-sso"]').content === 'on') {
      box.append(el('a', { class: 'button primary', href: '/console/sso/start' }, 'Sign in with single sign-on'));
    }
  };

  // ---- Service Accounts ------------------------------------------------
  let rolesCache = null;
  async function roles() {
    rolesCache = rolesCache || (await api('GET', '/api/v1/roles')).items;
    return rolesCache;
  }

  // May the signed-in person give this role? The API decides; this only
  // spares them a refusal: every permission it grants must be theirs,
  // `admin` is an admin's to give, and `operator` is never a person's.
  function grantable(r) {
    if (r.id === 'operator') return false;
    if (r.id === 'admin' && !W.me.roles.includes('admin')) return false;
    return r.permissions.every((p) => W.me.permissions.includes(p));
  }

  function roleChecks(all, selected, legend) {
    const boxes = all.filter((r) => r.id !== 'operator' || selected.includes(r.id)).map((r) => {
      const ok = grantable(r);
      const why = ok ? r.description : 'You cannot give this role: it grants permissions you do not hold.';
      return el('label', { title: why, class: ok ? null : 'unavailable' },
        el('input', { type: 'checkbox', name: 'role', value: r.id, checked: selected.includes(r.id), disabled: !ok }), r.id);
    });
    return el('fieldset', {}, el('legend', {}, legend || 'Roles', el('span', { class: 'hint', text: ' (at least one)' })), el('div', { class: 'checks' }, boxes));
  }
  const checkedRoles = (form) => [...form.querySelectorAll('input[name=role]:checked')].map((i) => i.value);
  const ipList = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);

  function accountForm(all, a) {
    const name = el('input', { name: 'name', required: true, maxlength: 200, value: a ? a.name : '' });
    const ips = el('input', { name: 'allowed_ips', placeholder: '10.0.0.0/8, 192.168.1.1', value: a ? a.allowed_ips.join(', ') : '' });
    const options = (a ? [['keep', 'Keep existing']] : []).concat(EXPIRY);
    const expires = el('select', { name: 'expires_in' }, options.map(([v, t]) => el('option', { value: v }, t)));
    return el('form', { novalidate: true },
      W.field('Name', name, '(required)'),
      roleChecks(all, a ? a.roles : []),
      W.field('Allowed IPs', ips, '(optional, comma-separated CIDR)'),
      W.field('Expires in', expires, a && a.expires_at ? `(now ${W.date(a.expires_at).textContent})` : ''));
  }

  function createDialog() {
    return roles().then((all) => {
      const d = W.dialog('Create Service Account', 'A service account gets a client ID and secret for API access');
      const form = accountForm(all, null);
      const error = W.errorBox();
      const submit = el('button', { type: 'submit', class: 'primary' }, 'Create');
      form.append(error, el('footer', {}, el('button', { type: 'button', onclick: () => d.close() }, 'Cancel'), submit));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        submit.disabled = true;
        try {
          const created = await api('POST', '/api/v1/service-accounts', {
            type: 'credential', name: form.name.value.trim(), roles: checkedRoles(form),
            allowed_ips: ipList(form.allowed_ips.value), expires_in: form.expires_in.value,
          });
          d.body.replaceChildren(el('h2', { id: d.getAttribute('aria-labelledby'), text: 'Service account created' }),
            W.secretPanel(created.client_id, created.client_secret),
            el('footer', {}, el('button', { type: 'button', class: 'primary', onclick: () => d.close() }, 'Done')));
          d.body.querySelector('[data-copy]').focus();
          d.onclosed = () => W.refresh();
        } catch (err) {
          W.fail(err, error);
          submit.disabled = false;
        }
      });
      d.body.append(form);
      d.show();
    }).catch((err) => W.fail(err));
  }

  async function editDialog(a) {
    const all = await roles();
    const d = W.dialog('Edit Service Account', el('code', { text: a.client_id || a.integration || a.id }));
    const form = accountForm(all, a);
    const error = W.errorBox();
    const save = el('button', { type: 'submit', class: 'primary' }, 'Save');
    const reset = el('button', { type: 'button', class: 'danger' }, 'Reset credentials');
    // Unsaved edits: the form differs from what it opened with.
    const values = () => JSON.stringify([form.name.value, checkedRoles(form), form.allowed_ips.value, form.expires_in.value]);
    const opened = values();
    let dirty = false;
    let saving = false;
    const why = el('p', { class: 'hint', id: `why${a.id}` });
    const sync = () => {
      const reason = a.type !== 'credential' ? 'Only a credential account has a secret to reset.'
        : a.status === 'disabled' ? 'The account is disabled: enable it first.'
          : dirty ? 'Save or cancel your edits first.' : saving ? 'Saving…' : '';
      reset.disabled = Boolean(reason);
      why.textContent = reason;
    };
    const changed = () => { dirty = values() !== opened; sync(); };
    form.addEventListener('input', changed);
    form.addEventListener('change', changed);
    reset.setAttribute('aria-describedby', why.id);
    const resetBox = el('div', { class: 'section' }, el('h3', { text: 'Reset credentials' }),
      el('p', { class: 'hint', text: 'Issues a new client secret and keeps the client ID. The old secret stops working at once; access tokens already issued run out within 15 minutes (Disable stops them now).' }),
      reset, why);
    reset.addEventListener('click', () => {
      const confirm = el('button', { type: 'button', class: 'danger' }, 'Reset');
      const box = el('div', { class: 'warning', role: 'alert' }, el('p', { text: 'Reset this account’s secret? Anything using the current secret stops working.' }),
        confirm, ' ', el('button', { type: 'button', onclick: () => { box.remove(); reset.focus(); } }, 'Cancel'));
      resetBox.append(box);
      confirm.focus();
      confirm.addEventListener('click', async () => {
        confirm.disabled = true;
        try {
          const r = await api('POST', `/api/v1/service-accounts/${enc(a.id)}/reset-secret`);
          d.body.replaceChildren(el('h2', { id: d.getAttribute('aria-labelledby'), text: 'Credentials reset' }),
            W.secretPanel(r.client_id || a.client_id, r.client_secret),
            el('footer', {}, el('button', { type: 'button', class: 'primary', onclick: () => d.close() }, 'Done')));
          d.body.querySelector('[data-copy]').focus();
          d.onclosed = () => W.refresh();
        } catch (err) {
          W.fail(err, error);
          confirm.disabled = false;
        }
      });
    });
    form.append(error, el('footer', {}, el('button', { type: 'button', onclick: () => d.close() }, 'Cancel'), save));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      saving = true; save.disabled = true; sync();
      const body = { name: form.name.value.trim(), roles: checkedRoles(form), allowed_ips: ipList(form.allowed_ips.value) };
      if (form.expires_in.value !== 'keep') body.expires_in = form.expires_in.value;
      try {
        a = await api('PATCH', `/api/v1/service-accounts/${enc(a.id)}`, body);
        dirty = false;
        W.toast('Saved');
        d.onclosed = () => W.refresh();
        d.close();
      } catch (err) {
        W.fail(err, error);
      } finally {
        saving = false; save.disabled = false; sync();
      }
    });
    sync();
    d.body.append(form, resetBox);
    d.show();
  }

  async function setEnabled(a, enable) {
    try {
      await api('POST', `/api/v1/service-accounts/${enc(a.id)}/${enable ? 'enable' : 'disable'}`);
      W.toast(`${a.name} ${enable ? 'enabled' : 'disabled'}`);
      W.focusMain = false;
      await W.refresh();
      const again = document.querySelector(`tr[data-id="${CSS.escape(a.id)}"] button[data-toggle]`);
      if (again) again.focus();
    } catch (err) {
      W.fail(err);
    }
  }

  const statusBadge = (s) => el('span', { class: `badge ${s}`, text: s.charAt(0).toUpperCase() + s.slice(1) });

  function accountRow(a) {
    const manage = W.can('org:manage');
    const cells = [
      ['Name', [el('a', { href: `#/accounts/${enc(a.id)}` }, a.name), a.client_id ? el('code', { class: 'client-id', text: a.client_id }) : null]],
      ['Type', a.type === 'integration' ? 'Integration' : 'Credential'],
      ['Roles', a.roles.join(', ') || '—'],
      ['IP Restrictions', a.allowed_ips.length ? a.allowed_ips.join(', ') : 'None'],
      ['Last Used', W.when(a.last_used_at)],
      ['Expires', W.date(a.expires_at)],
      ['Status', statusBadge(a.status)],
    ].map(([label, v]) => el('td', { 'data-label': label }, v));
    const actions = el('td', { class: 'actions' });
    if (a.type === 'integration') {
      actions.append(el('button', { type: 'button', onclick: () => { location.hash = `#/accounts/${enc(a.id)}`; } }, 'View integration'));
    } else if (manage) {
      actions.append(el('button', { type: 'button', onclick: () => editDialog(a).catch((e) => W.fail(e)) }, 'Edit'),
        a.status === 'disabled'
          ? el('button', { type: 'button', 'data-toggle': '', onclick: () => setEnabled(a, true) }, 'Enable')
          : el('button', { type: 'button', 'data-toggle': '', onclick: () => setEnabled(a, false) }, 'Disable'));
    }
    return el('tr', { class: a.status === 'disabled' ? 'dimmed' : null, 'data-id': a.id }, cells, actions);
  }

  W.route(/^\/accounts$/, async () => {
    rolesCache = null;
    const accounts = await W.listAll('/api/v1/service-accounts?limit=200');
    const create = el('button', { type: 'button', class: 'primary', onclick: createDialog, disabled: !W.can('org:manage') }, 'Create');
    const head = el('div', { class: 'head' }, el('div', {}, el('h1', { text: 'Service Accounts' }),
      el('p', { class: 'sub', text: 'Integrations and credentials with programmatic access' }),
      W.readOnlyNote()), create);
    if (!accounts.length) {
      const again = el('button', { type: 'button', class: 'primary', onclick: createDialog, disabled: !W.can('org:manage') }, 'Create');
      return el('section', {}, head, el('div', { class: 'card empty' },
        el('h2', { text: 'No service accounts yet' }),
        el('p', { text: 'A service account is how your automation — CI jobs, agents, MCP clients, backend integrations — calls your APIs without a person’s login. It gets a client ID and secret (or a key, or trust in its CI platform’s tokens) and exchanges them for 15-minute access tokens, bounded by the roles you give it.' }),
        again));
    }
    const th = ['Name', 'Type', 'Roles', 'IP Restrictions', 'Last Used', 'Expires', 'Status'].map((t) => el('th', { scope: 'col', text: t }));
    th.push(el('th', { scope: 'col' }, el('span', { class: 'visually-hidden', text: 'Actions' })));
    const table = el('table', { class: 'stack' }, el('caption', { class: 'visually-hidden', text: 'Service accounts' }),
      el('thead', {}, el('tr', {}, th)), el('tbody', {}, accounts.map(accountRow)));
    return el('section', {}, head, el('div', { class: 'table-wrap' }, table));
  });

  // Said once per page to a person who may read but not change.
  W.readOnlyNote = () => (W.can('org:manage') ? null
    : el('p', { class: 'hint', text: `Your roles (${W.me.roles.join(', ')}) let you read this organization; changing it needs org:manage.` }));

  W.statusBadge = statusBadge;
  W.roles = roles;
  W.roleChecks = roleChecks;
  W.checkedRoles = checkedRoles;
})();
