"""The admin console in a real browser: Debian's Chromium, driven by
Playwright for Python (never a downloaded browser). Run by
tests/warden/console_browser.rs against a live warden:

  console_test.py link  BASE_URL LINK_URL
  console_test.py sso   BASE_URL

`link` is the org admin's whole first hour, done without curl: sign in by
the CLI's link, create an account, copy its secret, watch Last Used move,
disable and enable it (checked at the token endpoint), edit it and reset
its credentials, its credentials tab, roles, the team, the audit log with
every step under the admin's name, keyboard use, a phone-sized screen.
`sso` signs in through node-oidc-provider's login pages.

Screenshots go to $WARDEN_CONSOLE_SCREENSHOTS when set (docs/images/console
is refreshed that way), else nowhere. Exits non-zero on the first failure.
"""
import base64
import json
import os
import re
import sys
import time

import requests
from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("WARDEN_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = os.environ.get("WARDEN_CONSOLE_SCREENSHOTS")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def shot(page, name, full=False):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=full)


EXPECTED = []  # paths whose 4xx answer a step provokes on purpose


def watch_errors(page, base, errors=None):
    """Errors logged by warden's own pages (the SSO provider's are not
    ours). Chromium logs every 4xx as "Failed to load resource": those a
    step provokes on purpose (in EXPECTED) are not errors."""
    errors = [] if errors is None else errors

    def on_console(m):
        url = (m.location or {}).get("url", base)
        provoked = "status of 4" in m.text and any(url.startswith(base + p) for p in EXPECTED)
        if m.type == "error" and url.startswith(base) and not provoked:
            errors.append(f"console: {m.text} at {m.location}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    return errors


def token(base, client_id, secret):
    return requests.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(client_id, secret), timeout=10)


def row(page, name):
    return page.locator("tbody tr", has=page.get_by_role("link", name=name, exact=True))


def link_flow(base, link):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = ctx.new_page()
        errors = watch_errors(page, base)

        # Not signed in: the console sends you to sign in.
        resp = page.goto(f"{base}/console")
        csp = resp.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "unsafe" not in csp, csp
        page.wait_for_url("**/console/login")
        expect(page.get_by_role("heading", name="Sign in to warden")).to_be_visible()
        shot(page, "signin")

        # The link signs in once; the token leaves the address bar.
        page.goto(link)
        expect(page.get_by_role("heading", name="Service Accounts", exact=True)).to_be_visible()
        assert "token=" not in page.url, page.url
        expect(page.locator(".who")).to_contain_text("alice@example.com")
        expect(page.get_by_role("heading", name="No service accounts yet")).to_be_visible()
        shot(page, "empty")

        # The skip link moves focus to the content and changes no route.
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.locator("#main")).to_be_focused()
        expect(page.get_by_role("heading", name="No service accounts yet")).to_be_visible()

        # Keyboard only: Create opens a dialog with focus on Name; Escape
        # closes it and focus returns to the button.
        create = page.get_by_role("button", name="Create").first
        create.focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Create Service Account")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_label("Name")).to_be_focused()
        page.keyboard.press("Escape")
        expect(dialog).to_have_count(0)
        expect(create).to_be_focused()

        # Create: Name, Roles, Allowed IPs, Expires in (default Never).
        create.click()
        dialog = page.get_by_role("dialog", name="Create Service Account")
        expect(dialog.get_by_label("Expires in")).to_have_value("never")
        dialog.get_by_label("Name").fill("risk-sync-agent")
        dialog.get_by_label("viewer", exact=True).check()
        dialog.get_by_label("Allowed IPs").fill("10.0.0.0/8, 127.0.0.1")
        dialog.get_by_label("Expires in").select_option(label="90 days")
        shot(page, "create")
        dialog.get_by_role("button", name="Create").click()

        created = page.get_by_role("dialog")
        expect(created.get_by_role("heading", name="Service account created")).to_be_visible()
        # Focus is on Copy, so a stray Enter cannot close away the secret.
        expect(created.get_by_role("button", name="Copy to clipboard")).to_be_focused()
        expect(created).to_contain_text("This is the only time the secret will be shown. Save it somewhere safe before closing.")
        client_id = created.get_by_label("Client ID").input_value()
        secret_box = created.get_by_label("Client Secret")
        expect(secret_box).to_have_attribute("type", "password")
        created.get_by_role("button", name="Toggle visibility").click()
        expect(secret_box).to_have_attribute("type", "text")
        secret = secret_box.input_value()
        assert client_id.startswith("arm_sa_") and secret.startswith("arm_sk_"), (client_id, secret)
        created.get_by_role("button", name="Copy to clipboard").click()
        assert page.evaluate("navigator.clipboard.readText()") == secret
        created.get_by_role("button", name="Toggle visibility").click()
        shot(page, "created")
        created.get_by_role("button", name="Done").click()
        expect(page.get_by_role("dialog")).to_have_count(0)
        assert secret not in page.content(), "the secret is gone from the page once closed"

        # The table (once the list has reloaded): its columns, and the new row.
        r = row(page, "risk-sync-agent")
        expect(r).to_contain_text(client_id)
        headers = [h.strip() for h in page.locator("thead th").all_inner_texts()]
        assert headers[:7] == ["NAME", "TYPE", "ROLES", "IP RESTRICTIONS", "LAST USED", "EXPIRES", "STATUS"] or \
            headers[:7] == ["Name", "Type", "Roles", "IP Restrictions", "Last Used", "Expires", "Status"], headers
        expect(r).to_contain_text("Credential")
        expect(r).to_contain_text("viewer")
        expect(r).to_contain_text("10.0.0.0/8, 127.0.0.1/32")
        expect(r.locator("td[data-label='Last Used']")).to_have_text("Never")
        expect(r.locator("td[data-label='Status']")).to_have_text("Active")

        # The secret works; Last Used moves (bookkeeping is batched).
        assert token(base, client_id, secret).status_code == 200
        for _ in range(40):
            page.reload()
            cell = row(page, "risk-sync-agent").locator("td[data-label='Last Used']")
            cell.wait_for()
            if cell.inner_text() != "Never":
                break
            time.sleep(0.5)
        assert row(page, "risk-sync-agent").locator("td[data-label='Last Used']").inner_text() != "Never"
        shot(page, "accounts")

        # Disable: dimmed, Disabled, Enable; the token endpoint says 403.
        row(page, "risk-sync-agent").get_by_role("button", name="Disable").click()
        r = row(page, "risk-sync-agent")
        expect(r.locator("td[data-label='Status']")).to_have_text("Disabled")
        expect(r).to_have_class(re.compile("dimmed"))
        expect(r.get_by_role("button", name="Enable")).to_be_focused()
        assert token(base, client_id, secret).status_code == 403
        # Reset credentials is disabled while the account is.
        r.get_by_role("button", name="Edit").click()
        edit = page.get_by_role("dialog", name="Edit Service Account")
        expect(edit.get_by_role("button", name="Reset credentials")).to_be_disabled()
        expect(edit).to_contain_text("The account is disabled: enable it first.")
        shot(page, "disabled-edit")
        page.keyboard.press("Escape")
        shot(page, "disabled")
        row(page, "risk-sync-agent").get_by_role("button", name="Enable").click()
        expect(row(page, "risk-sync-agent").locator("td[data-label='Status']")).to_have_text("Active")
        assert token(base, client_id, secret).status_code == 200

        # Edit: the client id under the title, Keep existing, and Reset
        # credentials disabled while there are unsaved edits.
        row(page, "risk-sync-agent").get_by_role("button", name="Edit").click()
        edit = page.get_by_role("dialog", name="Edit Service Account")
        expect(edit).to_contain_text(client_id)
        expect(edit.get_by_label("Expires in")).to_have_value("keep")
        reset = edit.get_by_role("button", name="Reset credentials")
        expect(reset).to_be_enabled()
        shot(page, "edit")
        edit.get_by_label("Name").fill("risk-sync")
        expect(reset).to_be_disabled()
        expect(edit).to_contain_text("Save or cancel your edits first.")
        # Undoing the edit is no edit.
        edit.get_by_label("Name").fill("risk-sync-agent")
        expect(reset).to_be_enabled()
        edit.get_by_label("Name").fill("risk-sync")
        expect(reset).to_be_disabled()
        edit.get_by_role("button", name="Save").click()
        expect(page.get_by_role("link", name="risk-sync", exact=True)).to_be_visible()

        row(page, "risk-sync").get_by_role("button", name="Edit").click()
        edit = page.get_by_role("dialog", name="Edit Service Account")
        edit.get_by_role("button", name="Reset credentials").click()
        edit.get_by_role("button", name="Reset", exact=True).click()
        done = page.get_by_role("dialog", name="Credentials reset")
        expect(done).to_contain_text("This is the only time the secret will be shown.")
        new_secret = done.get_by_label("Client Secret").input_value()
        done.get_by_role("button", name="Done").click()
        assert new_secret != secret
        assert token(base, client_id, secret).status_code == 401, "the old secret is gone"
        assert token(base, client_id, new_secret).status_code == 200

        # Credentials tab: the secret by prefix; rotate; a key; a federated
        # trust with the paste-a-JWT check; remove.
        page.get_by_role("link", name="risk-sync", exact=True).click()
        expect(page.get_by_role("tab", name="Credentials")).to_have_attribute("aria-selected", "true")
        creds = page.get_by_role("tabpanel")
        expect(creds).to_contain_text(new_secret[:12])
        page.get_by_role("button", name="Rotate secret").click()
        rot = page.get_by_role("dialog", name="Rotate secret")
        rot.get_by_role("button", name="Rotate").click()
        rot = page.get_by_role("dialog", name="Secret rotated")
        expect(rot).to_contain_text("This is the only time the secret will be shown.")
        rotated = rot.get_by_label("Client Secret").input_value()
        rot.get_by_role("button", name="Done").click()
        expect(creds.locator("tbody tr")).to_have_count(2)
        assert token(base, client_id, new_secret).status_code == 200, "in its grace period"
        assert token(base, client_id, rotated).status_code == 200

        page.get_by_role("button", name="Add key").click()
        key = page.get_by_role("dialog", name="Add a public key")
        jwk = {"kty": "EC", "crv": "P-256", "kid": "laptop-1",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        key.get_by_label("Public JWK").fill(json.dumps(jwk))
        key.get_by_role("button", name="Add key").click()
        expect(page.get_by_role("tabpanel")).to_contain_text("laptop-1")

        page.get_by_role("button", name="Add federated trust").click()
        fed = page.get_by_role("dialog", name="Add a federated trust")
        fed.get_by_label("Issuer").fill("https://token.actions.githubusercontent.com")
        fed.get_by_label("Subject").fill("repo:acme/app:ref:refs/heads/main")
        fed.get_by_label("Audience").fill("https://warden.example.com")
        fed.get_by_label("Claims").fill('{"repository_id": "1001"}')
        claims = {"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/app:ref:refs/heads/main",
                  "aud": "https://warden.example.com", "repository_id": "1001"}
        b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
        fed.get_by_label("Paste a JWT to see whether it matches").fill(f"{b64({'alg': 'RS256'})}.{b64(claims)}.sig")
        fed.get_by_role("button", name="Check token").click()
        expect(fed).to_contain_text("This token matches.")
        shot(page, "federated-check")
        fork = dict(claims, repository_id="2002")
        fed.get_by_label("Paste a JWT to see whether it matches").fill(f"{b64({'alg': 'RS256'})}.{b64(fork)}.sig")
        fed.get_by_role("button", name="Check token").click()
        expect(fed).to_contain_text("This token does not match.")
        fed.get_by_role("button", name="Add trust").click()
        panel = page.get_by_role("tabpanel")
        expect(panel).to_contain_text("Federated trust")
        expect(panel.locator("tbody tr")).to_have_count(4)
        shot(page, "credentials", full=True)
        page.once("dialog", lambda d: d.accept())
        panel.locator("tbody tr", has_text="laptop-1").get_by_role("button", name="Remove").click()
        expect(page.get_by_role("tabpanel").locator("tbody tr")).to_have_count(3)

        # The account's own timeline.
        page.get_by_role("tab", name="Activity").click()
        activity = page.get_by_role("tabpanel")
        for action in ["service_account.created", "service_account.disabled", "service_account.secret_reset", "credential.added"]:
            expect(activity).to_contain_text(action)
        shot(page, "activity", full=True)

        # Roles: the matrix, and a custom role made here.
        page.get_by_role("link", name="Roles").click()
        expect(page.get_by_role("heading", name="Roles", exact=True)).to_be_visible()
        expect(page.get_by_role("row", name=re.compile("^admin"))).to_be_visible()
        page.get_by_role("button", name="Create role").click()
        rd = page.get_by_role("dialog", name="Create role")
        rd.get_by_label("Role ID").fill("release-bot")
        rd.get_by_label("Description").fill("Publishes releases")
        rd.get_by_label("org:read", exact=True).check()
        rd.get_by_role("button", name="Create role").click()
        expect(page.get_by_role("row", name=re.compile("^release-bot"))).to_contain_text("custom")
        shot(page, "roles", full=True)

        # APIs: what the operator registered, with its permissions (never
        # its credentials: those are the platform's).
        page.get_by_role("link", name="APIs").click()
        expect(page.get_by_role("heading", name="APIs", exact=True)).to_be_visible()
        api_row = page.locator("tbody tr", has_text="https://api.example.com")
        expect(api_row).to_contain_text("invoices:read")
        expect(api_row).to_contain_text("Read invoices")
        expect(api_row.locator("td[data-label='Status']")).to_have_text("active")
        assert "arm_rs_" not in page.content() and "arm_sk_" not in page.content()
        shot(page, "apis", full=True)

        # Team: the last admin cannot drop their own admin role.
        page.get_by_role("link", name="Team").click()
        page.locator("tbody tr", has_text="alice@example.com").get_by_role("button", name="Edit roles").click()
        md = page.get_by_role("dialog")
        md.get_by_label("admin", exact=True).uncheck()
        md.get_by_label("viewer", exact=True).check()
        EXPECTED.append("/api/v1/members/")
        md.get_by_role("button", name="Save").click()
        expect(md.get_by_role("alert")).to_have_text(
            "Cannot remove or deactivate the last admin. Assign the admin role to another member first.")
        shot(page, "team-last-admin")
        page.keyboard.press("Escape")

        # Audit: every step, under the admin's name.
        page.get_by_role("link", name="Audit").click()
        # As the log shows it: type:id.
        page.get_by_label("Actor").fill("user:link:alice@example.com")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**/console#/audit?actor=*")
        log = page.locator("tbody")
        for action in ["console.signed_in", "service_account.created", "service_account.disabled",
                       "service_account.enabled", "service_account.updated", "service_account.secret_reset",
                       "service_account.secret_rotated", "credential.added", "credential.removed", "role.created"]:
            expect(log).to_contain_text(action)
        # Only hers (waiting out the unfiltered table the filter replaces),
        # shown by her email, the id on hover.
        actor = page.locator("td[data-label='Actor'] > span")
        expect(actor.first).to_have_text("alice@example.com")
        expect(actor.filter(has_not_text="alice@example.com")).to_have_count(0)
        titles = {actor.nth(i).get_attribute("title") for i in range(actor.count())}
        assert titles == {"user:link:alice@example.com"}, titles
        # An account is named, with its client id below; its id on hover.
        target = log.locator("td[data-label='Target'] > span", has_text=client_id).first
        expect(target).to_be_visible()
        assert target.get_attribute("title").startswith("service_account:"), target.get_attribute("title")
        assert "service_account:" not in log.inner_text()
        shot(page, "audit", full=True)

        # A phone-sized screen still shows the accounts.
        page.set_viewport_size({"width": 390, "height": 844})
        page.get_by_role("link", name="Service Accounts").click()
        expect(page.get_by_role("link", name="risk-sync", exact=True)).to_be_visible()
        shot(page, "phone", full=True)
        page.set_viewport_size({"width": 1280, "height": 800})

        # Signing out ends the session; the link cannot be used again.
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/console/login")
        EXPECTED.append("/console/session")
        page.goto(link)
        expect(page.get_by_role("alert")).to_contain_text("already used")
        page.goto(f"{base}/console")
        page.wait_for_url("**/console/login")

        assert not errors, errors
        browser.close()


def sso_flow(base):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        errors = []

        def sign_in(login):
            # Each person in a browser of their own (the provider keeps its
            # own session, as a company's SSO does).
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            watch_errors(page, base, errors)
            page.goto(f"{base}/console/login")
            page.get_by_role("link", name="Sign in with single sign-on").click()
            # The provider's pages: its login form, then its consent page.
            page.wait_for_url("**/interaction/**")
            page.locator("input[name=login]").fill(login)
            page.locator("input[name=password]").fill("any")
            with page.expect_navigation():
                page.locator("button[type=submit]").click()
            if "/interaction/" in page.url:
                with page.expect_navigation():
                    page.locator("button[type=submit]").click()
            page.wait_for_url(lambda u: u.startswith(base))
            page.wait_for_load_state()
            return page

        page = sign_in("admin-ann")
        expect(page.get_by_role("heading", name="Service Accounts", exact=True)).to_be_visible()
        expect(page.locator(".who")).to_contain_text("admin-ann@acme.test")
        shot(page, "sso-signed-in")
        page.get_by_role("link", name="Audit").click()
        first = page.locator("tbody tr", has_text="console.signed_in").first
        # The person by email; their subject on hover.
        expect(first.locator("td[data-label='Actor'] > span")).to_have_attribute("title", "user:admin-ann")
        expect(first).to_contain_text("admin-ann@acme.test")
        expect(first).to_contain_text("method: sso")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/console/login")

        # Someone no rule admits is refused, with the reason.
        EXPECTED.append("/console/sso/callback")
        page = sign_in("guest-gus")
        expect(page.get_by_role("heading", name="Sign-in failed")).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text("no rule of this console admits your account")
        shot(page, "sso-refused")
        page.goto(f"{base}/console")
        page.wait_for_url("**/console/login")

        # A staff member signs in as a viewer: can read, cannot create.
        page = sign_in("staff-sam")
        expect(page.get_by_role("heading", name="Service Accounts", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Create").first).to_be_disabled()

        assert not errors, errors
        browser.close()


if __name__ == "__main__":
    mode, base = sys.argv[1], sys.argv[2].rstrip("/")
    if mode == "link":
        link_flow(base, sys.argv[3])
    else:
        sso_flow(base)
    print(f"console {mode} flow: ok")
