#!/usr/bin/env python3
"""Measures the disk warden's audit log and usage counters take per token.

Starts `warden serve` (the binary in $WARDEN_BIN) on a fresh SQLite file,
issues N tokens for one account over keep-alive HTTP, waits for the
bookkeeping flush, and sums the pages of audit_events (with its indexes)
and account_usage by SQLite's dbstat. With a PostgreSQL URL in
$WARDEN_PG_URL it measures pg_total_relation_size the same way.
"""
import base64, http.client, json, os, subprocess, sys, tempfile, time, sqlite3

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
events = sys.argv[2] if len(sys.argv) > 2 else "all"
bin_ = os.environ.get("WARDEN_BIN", "target/release/warden")
pg = os.environ.get("WARDEN_PG_URL")
d = tempfile.mkdtemp()
db = pg or f"sqlite://{d}/w.db"
env = dict(os.environ, WARDEN_DATABASE_URL=db, WARDEN_KEYS_DIR=f"{d}/keys",
           WARDEN_LISTEN="127.0.0.1:18099", WARDEN_AUDIT_TOKEN_EVENTS=events,
           WARDEN_LOG="warn",
           WARDEN_ROLE_CATALOG=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            "..", "examples", "catalogs", "risk-platform.toml"))
acct = json.loads(subprocess.check_output([bin_, "accounts", "create", "--name", "m",
                                           "--role", "risk-editor", "--json"], env=env))
srv = subprocess.Popen([bin_, "serve"], env=env)
try:
    time.sleep(1.5)
    auth = base64.b64encode(f"{acct['client_id']}:{acct['client_secret']}".encode()).decode()
    def size():
        if pg:
            import subprocess as sp
            q = ("SELECT pg_total_relation_size('audit_events') + pg_total_relation_size('account_usage'), "
                 "(SELECT COUNT(*) FROM audit_events)")
            out = sp.check_output(["psql", pg, "-Atc", q]).decode().strip().split("|")
            return int(out[0]), int(out[1])
        c = sqlite3.connect(f"{d}/w.db")
        names = [r[0] for r in c.execute(
            "SELECT name FROM sqlite_master WHERE tbl_name IN ('audit_events','account_usage')")]
        b = sum(c.execute("SELECT COALESCE(SUM(pgsize),0) FROM dbstat WHERE name = ?", (n,)).fetchone()[0]
                for n in names)
        rows = c.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
        c.close()
        return b, rows
    before, r0 = size()
    conn = http.client.HTTPConnection("127.0.0.1", 18099)
    body = "grant_type=client_credentials"
    for _ in range(N):
        conn.request("POST", "/oauth/token", body, {"Authorization": f"Basic {auth}",
                     "Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse(); r.read()
        assert r.status == 200, r.status
    time.sleep(3)
    after, r1 = size()
    per_token = (after - before) / N
    print(f"{events}: {N} tokens, {r1 - r0} audit rows, {after - before} bytes "
          f"= {per_token:.0f} B/token = {per_token * 1e6 / 2**20:.0f} MiB per million tokens")
finally:
    srv.terminate(); srv.wait()
