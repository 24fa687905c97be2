// warden console: an account's page (Credentials, Activity), Roles, APIs,
// Team and Audit.
'use strict';

(() => {
  const { el, api } = W;
  const enc = encodeURIComponent;

  function table(caption, headers, rows) {
    return el('div', { class: 'table-wrap' }, el('table', { class: 'stack' },
      el('caption', { class: 'visually-hidden', text: caption }),
      el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows)));
  }
  const td = (label, ...v) => el('td', { 'data-label': label }, ...v);

  // ---- An account: Credentials and Activity ----------------------------
  function credentialRow(a, c) {
    let what;
    if (c.type === 'secret') what = [el('code', { text: c.prefix || c.id }), '…'];
    else if (c.type === 'public_key') what = c.jwks_uri ? ['JWKS ', el('code', { text: c.jwks_uri })] : ['Key ', el('code', { text: (c.jwk && (c.jwk.kid || c.jwk.kty)) || c.id })];
    else what = [el('div', {}, 'Issuer ', el('code', { text: c.issuer })), el('div', {}, 'Subject ', el('code', { text: c.subject })),
      el('div', {}, 'Audience ', el('code', { text: c.audience })), c.claims && Object.keys(c.claims).length ? el('div', {}, 'Claims ', el('code', { text: JSON.stringify(c.claims) })) : null];
    const kind = { secret: 'Secret', public_key: 'Public key', federated: 'Federated trust' }[c.type] || c.type;
    const remove = el('button', { type: 'button', class: 'danger', disabled: !W.can('org:manage'), onclick: async () => {
      if (!window.confirm(`Remove this ${kind.toLowerCase()}? Whatever uses it stops authenticating.`)) return;
      try {
        if (c.type === 'secret') await api('DELETE', `/api/v1/service-accounts/${enc(a.id)}/secrets/${enc(c.prefix || c.id)}`);
        else await api('DELETE', `/api/v1/service-accounts/${enc(a.id)}/credentials/${enc(c.id)}`);
        W.toast(`${kind} removed`);
        W.refresh();
      } catch (err) { W.fail(err); }
    } }, 'Remove');
    // A secret that expires is the one a rotation keeps for its grace.
    const grace = c.type === 'secret' && c.expires_at ? el('div', { class: 'hint', text: 'previous, in its grace period' }) : null;
    return el('tr', {}, td('Type', kind, grace), td('Credential', what), td('Created', W.date(c.created_at, '—')),
      td('Expires', W.date(c.expires_at)), td('Last used', W.when(c.last_used_at), c.last_used_ip ? el('div', { class: 'hint', text: c.last_used_ip }) : null),
      el('td', { class: 'actions' }, remove));
  }

  function rotateDialog(a) {
    const d = W.dialog('Rotate secret', 'A new secret now; the current one keeps working for the grace period, so you can roll it out.');
    const grace = el('select', { name: 'grace' }, [['1h', '1 hour'], ['24h', '24 hours'], ['7d', '7 days']].map(([v, t]) => el('option', { value: v, selected: v === '24h' }, t)));
    const error = W.errorBox();
    const go = el('button', { type: 'submit', class: 'primary' }, 'Rotate');
    const form = el('form', {}, W.field('Grace period', grace), error, el('footer', {}, el('button', { type: 'button', onclick: () => d.close() }, 'Cancel'), go));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      go.disabled = true;
      try {
        const r = await api('POST', `/api/v1/service-accounts/${enc(a.id)}/rotate-secret`, { grace_period: grace.value });
        d.body.replaceChildren(el('h2', { id: d.getAttribute('aria-labelledby'), text: 'Secret rotated' }), W.secretPanel(a.client_id, r.client_secret),
          el('footer', {}, el('button', { type: 'button', class: 'primary', onclick: () => d.close() }, 'Done')));
        d.body.querySelector('[data-copy]').focus();
        d.onclosed = () => W.refresh();
      } catch (err) { W.fail(err, error); go.disabled = false; }
    });
    d.body.append(form);
    d.show();
  }

  function addKeyDialog(a) {
    const d = W.dialog('Add a public key', 'The client signs its token requests (private_key_jwt); warden keeps only the public key.');
    const jwk = el('textarea', { name: 'jwk', placeholder: '{"kty":"EC","crv":"P-256","x":"…","y":"…","kid":"…"}' });
    const uri = el('input', { name: 'jwks_uri', placeholder: 'https://ci.example.com/.well-known/jwks.json' });
    const error = W.errorBox();
    const form = el('form', {}, W.field('Public JWK', jwk, '(JSON)'), W.field('or a JWKS URL', uri, '(the client publishes its keys)'), error,
      el('footer', {}, el('button', { type: 'button', onclick: () => d.close() }, 'Cancel'), el('button', { type: 'submit', class: 'primary' }, 'Add key')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        let body;
        if (uri.value.trim()) body = { type: 'public_key', jwks_uri: uri.value.trim() };
        else {
          try { body = { type: 'public_key', jwk: JSON.parse(jwk.value) }; } catch (_) { throw new W.ApiFailure(400, { detail: 'The JWK is not valid JSON.' }); }
        }
        await api('POST', `/api/v1/service-accounts/${enc(a.id)}/credentials`, body);
        d.onclosed = () => W.refresh();
        d.close();
        W.toast('Key added');
      } catch (err) { W.fail(err, error); }
    });
    d.body.append(form);
    d.show();
  }

  // The payload of a JWT, decoded in the browser (not verified).
  function payloadOf(jwt) {
    const part = (jwt.trim().split('.')[1] || '').replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part + '='.repeat((4 - (part.length % 4)) % 4)), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }
  const pointer = (obj, name) => (name.startsWith('/') ? name.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).reduce((o, k) => (o == null ? undefined : o[k]), obj) : obj[name]);

  function federatedDialog(a) {
    const d = W.dialog('Add a federated trust', 'Tokens from this issuer, for this subject and audience (and these claims), sign in as this account: no secret to store.');
    const f = {
      issuer: el('input', { name: 'issuer', placeholder: 'https://token.actions.githubusercontent.com' }),
      subject: el('input', { name: 'subject', placeholder: 'repo:acme/app:ref:refs/heads/main' }),
      audience: el('input', { name: 'audience', placeholder: 'warden' }),
      claims: el('textarea', { name: 'claims', placeholder: '{"repository_id": "1001"}' }),
    };
    const jwt = el('textarea', { name: 'check', placeholder: 'eyJhbGciOi…' });
    const result = el('ul', { class: 'check-result', 'aria-live': 'polite' });
    const check = el('button', { type: 'button', onclick: () => {
      result.replaceChildren();
      let p;
      try { p = payloadOf(jwt.value); } catch (_) { result.append(el('li', { class: 'no', text: 'Not a JWT' })); return; }
      let claims = {};
      try { claims = f.claims.value.trim() ? JSON.parse(f.claims.value) : {}; } catch (_) { result.append(el('li', { class: 'no', text: 'Claims are not valid JSON' })); return; }
      const aud = Array.isArray(p.aud) ? p.aud : [p.aud];
      const rows = [['iss', p.iss === f.issuer.value.trim(), p.iss], ['sub', p.sub === f.subject.value.trim(), p.sub],
        ['aud', aud.includes(f.audience.value.trim()), aud.join(', ')]];
      for (const [k, v] of Object.entries(claims)) rows.push([k, JSON.stringify(pointer(p, k)) === JSON.stringify(v), JSON.stringify(pointer(p, k))]);
      for (const [k, ok, got] of rows) result.append(el('li', { class: ok ? 'yes' : 'no' }, `${k}: `, el('code', { text: String(got) })));
      result.append(el('li', { class: 'hint', text: rows.every((r) => r[1]) ? 'This token matches. (Checked in your browser; its signature and times are checked by warden at exchange.)' : 'This token does not match.' }));
    } }, 'Check token');
    const error = W.errorBox();
    const form = el('form', {}, W.field('Issuer', f.issuer), W.field('Subject', f.subject), W.field('Audience', f.audience),
      W.field('Claims', f.claims, '(optional JSON object; exact values; a name starting with / is a JSON Pointer)'),
      el('div', { class: 'section' }, W.field('Paste a JWT to see whether it matches', jwt, '(it stays in this page)'), check, result),
      error, el('footer', {}, el('button', { type: 'button', onclick: () => d.close() }, 'Cancel'), el('button', { type: 'submit', class: 'primary' }, 'Add trust')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        let claims;
        try { claims = f.claims.value.trim() ? JSON.parse(f.claims.value) : undefined; } catch (_) { throw new W.ApiFailure(400, { detail: 'Claims are not valid JSON.' }); }
        await api('POST', `/api/v1/service-accounts/${enc(a.id)}/credentials`, { type: 'federated', issuer: f.issuer.value.trim(), subject: f.subject.value.trim(), audience: f.audience.value.trim(), claims });
        d.onclosed = () => W.refresh();
        d.close();
        W.toast('Federated trust added');
      } catch (err) { W.fail(err, error); }
    });
    d.body.append(form);
    d.show();
  }

  // Who an audit event names: an account or API by its name with its
  // client id (or audience) below, a person by their email, the operator
  // as such; the internal id is on hover (`title`) and in the filters.
  async function auditNames() {
    const names = new Map();
    const get = async (path, add) => { try { (await W.listAll(path, 1000)).forEach(add); } catch (_) { /* not readable: ids stay */ } };
    if (W.can('org:read') || W.can('org:manage')) {
      await get('/api/v1/service-accounts?include=deleted', (a) => names.set(a.id, [a.name, a.client_id]));
      await get('/api/v1/apis', (r) => names.set(r.id, [r.name, r.audience]));
    }
    return names;
  }
  function party(names, type, id, email) {
    const full = `${type}:${id}`;
    const known = names.get(id);
    if (known) return el('span', { title: full }, el('div', { text: known[0] }), known[1] ? el('div', { class: 'hint mono', text: known[1] }) : null);
    if (email || type === 'user') return el('span', { title: full, text: email || id.replace(/^link:/, '') });
    if (type === 'operator') return el('span', { title: full, text: id.startsWith('catalog:') ? `operator (${id})` : 'operator' });
    // An id nothing here names (a deleted API, another org's): short.
    const short = /^[0-9a-f]{8}-[0-9a-f-]{27}$/.test(id) ? `${id.slice(0, 8)}…` : id;
    return el('code', { title: full, text: `${type}:${short}` });
  }
  function auditTable(events, caption, names) {
    if (!events.length) return el('p', { class: 'sub', text: 'Nothing recorded yet.' });
    return table(caption, ['Time', 'Actor', 'Action', 'Target', 'Source IP', 'Details'], events.map((e) => el('tr', {},
      td('Time', W.when(e.at)),
      td('Actor', party(names, e.actor_type, e.actor_id, e.actor_email), e.on_behalf_of ? el('div', { class: 'hint', text: `for ${e.on_behalf_of}` }) : null),
      td('Action', el('code', { text: e.action })),
      td('Target', e.target_id ? party(names, e.target_type, e.target_id) : '—'),
      td('Source IP', e.source_ip || '—'),
      td('Details', auditDetails(e.details)))));
  }

  // One line per field: `name: value`, a change as `from → to`.
  function auditDetails(details) {
    const show = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
    return el('div', { class: 'details mono' }, Object.entries(details || {}).map(([k, v]) => el('div', {},
      el('span', { class: 'key', text: `${k}: ` }),
      v && typeof v === 'object' && !Array.isArray(v) && 'from' in v && 'to' in v ? `${show(v.from)} → ${show(v.to)}` : show(v))));
  }

  W.route(/^\/accounts\/([^/]+)(?:\/(credentials|activity))?$/, async (id, tab) => {
    const a = await api('GET', `/api/v1/service-accounts/${enc(id)}`);
    tab = tab || 'credentials';
    const manage = W.can('org:manage');
    const tabs = el('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Account' }, [['credentials', 'Credentials'], ['activity', 'Activity']].map(([k, t]) =>
      el('button', { type: 'button', role: 'tab', 'aria-selected': String(k === tab), onclick: () => { location.hash = `#/accounts/${enc(id)}/${k}`; } }, t)));
    const panel = el('div', { role: 'tabpanel', 'aria-label': tab === 'credentials' ? 'Credentials' : 'Activity' });
    if (tab === 'credentials') {
      const creds = (await api('GET', `/api/v1/service-accounts/${enc(id)}/credentials`)).items;
      panel.append(el('div', { class: 'toolbar' },
        a.type === 'credential' ? el('button', { type: 'button', disabled: !manage, onclick: () => rotateDialog(a) }, 'Rotate secret') : null,
        el('button', { type: 'button', disabled: !manage, onclick: () => addKeyDialog(a) }, 'Add key'),
        el('button', { type: 'button', disabled: !manage, onclick: () => federatedDialog(a) }, 'Add federated trust')),
      creds.length ? table('Credentials', ['Type', 'Credential', 'Created', 'Expires', 'Last used', ''], creds.map((c) => credentialRow(a, c)))
        : el('p', { class: 'sub', text: 'No credentials: this account cannot authenticate until you add one.' }));
    } else if (W.can('audit:read')) {
      const events = await W.listAll(`/api/v1/audit-events?target=${enc(id)}&limit=100`, 200);
      panel.append(auditTable(events, 'Activity', await auditNames()));
    } else panel.append(el('p', { class: 'sub', text: 'Reading the activity needs the audit:read permission.' }));
    return el('section', {}, el('p', {}, el('a', { href: '#/accounts' }, '← Service Accounts')),
      el('div', { class: 'head' }, el('div', {}, el('h1', { text: a.name }), el('p', { class: 'sub' }, a.client_id ? el('code', { text: a.client_id }) : a.integration, ' · ', W.statusBadge(a.status)))),
      tabs, panel);
  });

  // ---- Roles -------------------------------------------------------------
  function roleDialog(role, known) {
    const d = W.dialog(role ? `Edit role ${role.id}` : 'Create role', 'A custom role of this organization: a named set of permissions.');
    const id = el('input', { name: 'id', value: role ? role.id : '', disabled: Boolean(role), placeholder: 'release-bot' });
    const desc = el('input', { name: 'description', value: role ? role.description : '' });
    // Only permissions you hold can go into a role (the API's grant rule).
    const perms = el('div', { class: 'checks' }, known.filter((p) => W.can(p) || (role && role.permissions.includes(p))).map((p) => el('label', { class: W.can(p) ? null : 'unavailable', title: W.can(p) ? null : 'You do not hold this permission.' },
      el('input', { type: 'checkbox', name: 'perm', value: p, checked: Boolean(role && role.permissions.includes(p)), disabled: !W.can(p) }), p)));
    const other = el('input', { name: 'other', placeholder: 'billing:read' });
    const error = W.errorBox();
    const form = el('form', {}, W.field('Role ID', id, '(lowercase letters, digits, -)'), W.field('Description', desc),
      el('fieldset', {}, el('legend', {}, 'Permissions'), perms), W.field('Other permissions', other, '(comma-separated, declared by your APIs)'), error,
      el('footer', {}, el('button', { type: 'button', onclick: () => d.close() }, 'Cancel'), el('button', { type: 'submit', class: 'primary' }, role ? 'Save' : 'Create role')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const permissions = [...form.querySelectorAll('input[name=perm]:checked')].map((i) => i.value).concat(other.value.split(',').map((s) => s.trim()).filter(Boolean));
      try {
        if (role) await api('PATCH', `/api/v1/roles/${enc(role.id)}`, { description: desc.value, permissions });
        else await api('POST', '/api/v1/roles', { id: id.value.trim(), description: desc.value, permissions });
        d.onclosed = () => W.refresh();
        d.close();
        W.toast(role ? 'Role saved' : 'Role created');
      } catch (err) { W.fail(err, error); }
    });
    d.body.append(form);
    d.show();
  }

  W.route(/^\/roles$/, async () => {
    const roles = (await api('GET', '/api/v1/roles')).items;
    const perms = [...new Set(roles.flatMap((r) => r.permissions))].sort();
    const manage = W.can('org:manage');
    const rows = roles.map((r) => {
      const custom = !r.builtin && !r.global;
      return el('tr', {}, el('th', { scope: 'row' }, el('div', {}, r.id), el('div', { class: 'hint', text: r.builtin ? 'built-in' : r.global ? 'global' : 'custom' }), r.description ? el('div', { class: 'hint', text: r.description }) : null),
        perms.map((p) => el('td', { 'data-label': p }, r.permissions.includes(p) ? el('span', { 'aria-label': 'yes', text: '✓' }) : el('span', { 'aria-label': 'no', text: '·' }))),
        el('td', { class: 'actions' }, custom && manage ? [el('button', { type: 'button', onclick: () => roleDialog(r, perms) }, 'Edit'),
          el('button', { type: 'button', class: 'danger', onclick: async () => {
            if (!window.confirm(`Delete role ${r.id}?`)) return;
            try { await api('DELETE', `/api/v1/roles/${enc(r.id)}`); W.toast('Role deleted'); W.refresh(); } catch (err) { W.fail(err); }
          } }, 'Delete')] : null));
    });
    const head = el('tr', {}, el('th', { scope: 'col', text: 'Role' }), perms.map((p) => el('th', { scope: 'col' }, el('code', { text: p }))), el('th', { scope: 'col' }, el('span', { class: 'visually-hidden', text: 'Actions' })));
    return el('section', {}, el('div', { class: 'head' }, el('div', {}, el('h1', { text: 'Roles' }), el('p', { class: 'sub', text: 'What each role permits. Accounts and people hold roles; tokens carry their permissions.' })),
      el('button', { type: 'button', class: 'primary', disabled: !manage, onclick: () => roleDialog(null, perms) }, 'Create role')),
    el('div', { class: 'table-wrap' }, el('table', { class: 'matrix' }, el('caption', { class: 'visually-hidden', text: 'Roles and their permissions' }), el('thead', {}, head), el('tbody', {}, rows))));
  });

  // ---- APIs ------------------------------------------------------------------
  // The resource servers this org's accounts may get tokens for: what the
  // operator registered (`warden resource-servers create`, the platform API).
  W.route(/^\/apis$/, async () => {
    const apis = (await api('GET', '/api/v1/apis')).items;
    const intro = el('div', {}, el('h1', { text: 'APIs' }), el('p', { class: 'sub', text: 'The APIs that accept this server\'s tokens. A token for one asks for it with resource=<audience> and carries the permissions it declares.' }));
    if (!apis.length) return el('section', {}, intro, el('p', { class: 'hint', text: 'No API is registered yet. The operator registers one with warden resource-servers create --name … --audience … --permission ….' }));
    const rows = apis.map((r) => el('tr', {},
      td('Name', r.name),
      td('Audience', el('code', { text: r.audience })),
      td('Permissions', r.permissions.length ? el('ul', { class: 'plain' }, r.permissions.map((p) => el('li', {}, el('code', { text: p.name }), p.description ? ` ${p.description}` : ''))) : el('span', { class: 'hint', text: 'declares none: tokens carry every permission the account holds' })),
      td('Status', r.status),
      td('Registered', W.when(r.created_at))));
    return el('section', {}, intro, table('APIs', ['Name', 'Audience', 'Permissions', 'Status', 'Registered'], rows));
  });

  // ---- Team ----------------------------------------------------------------
  async function memberDialog(m) {
    const all = await W.roles();
    const d = W.dialog(`Roles of ${m.email || m.subject}`, el('code', { text: m.subject }));
    const error = W.errorBox();
    const form = el('form', {}, W.roleChecks(all, m.roles), error,
      el('footer', {}, el('button', { type: 'button', onclick: () => d.close() }, 'Cancel'), el('button', { type: 'submit', class: 'primary' }, 'Save')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await api('PATCH', `/api/v1/members/${enc(m.subject)}`, { roles: W.checkedRoles(form) });
        d.onclosed = () => W.refresh();
        d.close();
        W.toast('Saved');
      } catch (err) { W.fail(err, error); }
    });
    d.body.append(form);
    d.show();
  }

  W.route(/^\/team$/, async () => {
    const members = (await api('GET', '/api/v1/members')).items;
    const manage = W.can('org:manage');
    const rows = members.map((m) => el('tr', {}, td('Person', el('div', {}, m.email || m.subject.replace(/^link:/, '')), el('code', { class: 'client-id', text: m.subject })),
      td('Roles', m.roles.join(', ') || '—'), td('Last sign-in', W.when(m.last_seen_at)),
      el('td', { class: 'actions' }, manage ? [el('button', { type: 'button', onclick: () => memberDialog(m).catch((e) => W.fail(e)) }, 'Edit roles'),
        el('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!window.confirm(`Remove ${m.email || m.subject}? Their sessions end now.`)) return;
          try { await api('DELETE', `/api/v1/members/${enc(m.subject)}`); W.toast('Removed'); W.refresh(); } catch (err) { W.fail(err); }
        } }, 'Remove')] : null)));
    return el('section', {}, el('div', { class: 'head' }, el('div', {}, el('h1', { text: 'Team' }),
      el('p', { class: 'sub', text: 'People who have signed in to this console. Single sign-on sets their roles at each sign-in; the last person able to manage the organization cannot lose that ability.' }))),
    el('p', { class: 'hint', text: 'Someone appears here once they sign in: send a new person a link (warden console link), or let single sign-on admit them.' }),
    table('People', ['Person', 'Roles', 'Last sign-in', ''], rows));
  });

  // ---- Audit -----------------------------------------------------------------
  W.route(/^\/audit(?:\?(.*))?$/, async (query) => {
    const params = new URLSearchParams(query || '');
    const f = {};
    const form = el('form', { class: 'toolbar' });
    for (const [k, label, ph] of [['action', 'Action', 'service_account.disabled'], ['actor', 'Actor', 'user:link:alice@example.com'], ['target', 'Target', 'arm_sa_… or an id'], ['since', 'Since', '2026-12-01 or 2026-12-01T09:00:00Z']]) {
      f[k] = el('input', { name: k, value: params.get(k) || '', placeholder: ph });
      form.append(W.field(label, f[k]));
    }
    form.append(el('button', { type: 'submit' }, 'Filter'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const k of Object.keys(f)) if (f[k].value.trim()) q.set(k, f[k].value.trim());
      location.hash = `#/audit${q.toString() ? `?${q}` : ''}`;
    });
    const intro = [el('h1', { text: 'Audit log' }), el('p', { class: 'sub', text: 'Every change, sign-in and token, newest first.' })];
    if (!W.can('audit:read')) {
      return el('section', {}, intro, el('p', { class: 'hint', text: `Reading the audit log needs the audit:read permission, which your roles (${W.me.roles.join(', ')}) do not give.` }));
    }
    let page;
    let q;
    try {
      q = await auditQuery(params);
      page = await api('GET', `/api/v1/audit-events?${q}`);
    } catch (err) {
      // A filter the API refuses: say why, and keep the form to fix it.
      const error = W.errorBox();
      W.fail(err, error);
      return el('section', {}, intro, form, error);
    }
    const names = await auditNames();
    const list = el('div', {}, auditTable(page.items, 'Audit log', names));
    let cursor = page.next_cursor;
    const more = el('button', { type: 'button', hidden: !cursor, onclick: async () => {
      q.set('cursor', cursor);
      try {
        const next = await api('GET', `/api/v1/audit-events?${q}`);
        list.append(auditTable(next.items, 'Audit log, more', names));
        cursor = next.next_cursor;
        more.hidden = !cursor;
      } catch (err) { W.fail(err); }
    } }, 'Load more');
    return el('section', {}, intro, form, list, more);
  });

  // The API's query from the filters as the console shows things: an
  // actor or target as `type:id` (the type dropped), an account by its
  // client id (looked up), a bare date as its midnight UTC.
  async function auditQuery(params) {
    const q = new URLSearchParams();
    for (const [k, v] of params) if (v) q.set(k, v);
    for (const k of ['actor', 'target']) {
      let v = q.get(k);
      if (!v) continue;
      v = v.replace(/^(user|service_account|role|org):/, '');
      if (v.startsWith('arm_sa_')) v = (await api('GET', `/api/v1/service-accounts/${enc(v)}`)).id;
      q.set(k, v);
    }
    const since = q.get('since');
    if (since && /^\d{4}-\d{2}-\d{2}$/.test(since)) q.set('since', `${since}T00:00:00Z`);
    q.set('limit', '100');
    return q;
  }
})();
