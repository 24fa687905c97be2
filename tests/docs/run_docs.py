#!/usr/bin/env python3
"""Runs the shell examples of README.md and docs/*.md against a live warden.

Usage: run_docs.py WARDEN_BINARY [FILE.md ...]

For each Markdown file, every ```sh block (not ```sh norun: those need a
PostgreSQL cluster, a second server, systemd or the reader's own API) is
run, in order, in one bash session in a fresh directory, with `warden
serve` already running there on a free port, as a reader following the
page would. The page's own host names are pointed at it
(http://127.0.0.1:8080, https://warden.example.com), and both ways the
docs call the binary work: `cargo run --release -- ARGS` and `warden ARGS`
(`serve` is a no-op: the server is up).

A block's commands are split into runs of lines; the `# …` comment lines
after a run are the output the page shows for it. Every run must exit 0,
and every `"key": value` pair shown in its output whose value is stable (a
string without `…`, a number, true, false) must appear in what the run
printed. Exits non-zero, naming the page, the command and the difference,
on the first page that fails.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_PAGES = ["README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md")
)

# What a reader of a page already has, from the pages before it.
PRELUDE = {}

# The settings a page tells the reader to start warden with.
PAGE_ENV = {
    "docs/ci-without-secrets.md": {"WARDEN_FEDERATION_ALLOW_HTTP": "true"},
}

PAIR = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*:\s*("(?:[^"\\]|\\.)*"|true|false|null|-?\d+(?:\.\d+)?)')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blocks(text):
    """(info string, lines) of each fenced block. A ```json block right
    after a ```sh block (nothing but blank lines between) is the output the
    page shows for the sh block's last command: it is folded into the sh
    block as comment lines."""
    out, cur, info, gap = [], None, None, True
    for line in text.splitlines():
        if cur is None and line.startswith("```"):
            info, cur = line[3:].strip(), []
        elif cur is not None and line.startswith("```"):
            if info == "json" and not gap and out and out[-1][0] == "sh":
                out[-1][1].extend("# " + l for l in cur)
            elif info == "text" and not gap and out and out[-1][0] == "sh":
                # Lines the command prints, each checked as it stands.
                out[-1][1].extend("#= " + l for l in cur if l.strip())
            else:
                out.append((info, cur))
            cur, gap = None, False
        elif cur is not None:
            cur.append(line)
        elif line.strip():
            gap = True
    return out


def runs(lines):
    """Splits a block into (command lines, shown output lines)."""
    out, cmd, shown = [], [], []
    for line in lines:
        if line.startswith("#"):
            if cmd:
                shown.append(line[1:] if line.startswith("#=") else line[1:].strip())
            continue
        if not line.strip():
            continue
        if shown:
            out.append((cmd, shown))
            cmd, shown = [], []
        cmd.append(line)
    if cmd:
        out.append((cmd, shown))
    return out


def normalise(s):
    return re.sub(r'"\s*:\s*', '":', s)


# Values that differ on every run: ids, secrets, tokens, times.
VOLATILE = re.compile(r'^"(arm_(sa|sk|rs|rt)_|eyJ|[0-9a-f]{8}-|\d{4}-\d\d-\d\dT)')


def stable_pairs(shown):
    # `=` lines (from a ```text block) are expected verbatim.
    exact = [l[2:] for l in shown if l.startswith("= ") and "…" not in l]
    text = " ".join(l for l in shown if not l.startswith("= "))
    pairs = list(exact)
    for key, value in PAIR.findall(text):
        if "…" in value or value == "null" or VOLATILE.match(value):
            continue
        pairs.append(f'"{key}":{value}')
    return pairs


def run_page(binary, page):
    text = open(os.path.join(ROOT, page), encoding="utf-8").read()
    todo = [b for b in blocks(text) if b[0] == "sh"]
    if not todo:
        return True
    work = tempfile.mkdtemp(prefix="warden-docs-")
    # Pages refer to their example files as docs/examples/…, from a clone.
    os.symlink(os.path.join(ROOT, "docs"), os.path.join(work, "docs"))
    # And the test issuers (tests/issuers), with the npm packages
    # ./scripts/test installed there, which examples import.
    os.symlink(os.path.join(ROOT, "tests"), os.path.join(work, "tests"))
    modules = os.path.join(ROOT, "tests", "issuers", "node_modules")
    if os.path.isdir(modules):
        os.symlink(modules, os.path.join(work, "node_modules"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(WARDEN_LISTEN=f"127.0.0.1:{port}", DOCS_WARDEN_BIN=binary, WARDEN_LOG="warn")
    env.update(PAGE_ENV.get(page, {}))
    local = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([binary, "serve"], cwd=work, env=env,
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{local}/readyz", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        script = ["set -uo pipefail",
                  'warden() { "$DOCS_WARDEN_BIN" "$@"; }',
                  'cargo() { if [ "$1 $2 $3" = "run --release --" ]; then shift 3; '
                  '[ "$1" = serve ] && return 0; warden "$@"; else echo "unexpected: cargo $*" >&2; return 97; fi; }',
                  "{\ntrue\n" + PRELUDE.get(page, "") + "\n} 2>/dev/null"]
        checks = []
        for n, (cmd, shown) in enumerate(r for _, lines in todo for r in runs(lines)):
            body = "\n".join(cmd).replace("http://127.0.0.1:8080", local).replace(
                "https://warden.example.com", local)
            script.append(f"{{\n{body}\n}} > {work}/run{n}.out 2>&1; echo $? > {work}/run{n}.rc")
            expected = [p.replace("http://127.0.0.1:8080", local) for p in stable_pairs(shown)]
            checks.append((n, body, expected))
        # What the page started in the background stops with it.
        script.append("kill $(jobs -p) 2>/dev/null; true")
        path = os.path.join(work, "page.sh")
        open(path, "w").write("\n".join(script) + "\n")
        subprocess.run(["bash", path], cwd=work, env=env, timeout=300)
        ok = True
        for n, body, expected in checks:
            out_path = f"{work}/run{n}.out"
            out = (open(out_path, encoding="utf-8", errors="replace").read()
                   if os.path.exists(out_path) else "(never ran: the page's script stopped before it)")
            rc = open(f"{work}/run{n}.rc").read().strip() if os.path.exists(f"{work}/run{n}.rc") else "none"
            missing = [p for p in expected if p not in normalise(out) and p not in out]
            if rc != "0" or missing:
                ok = False
                print(f"{page}: this example did not run as shown (exit {rc}):\n{body}\n"
                      f"missing from its output: {missing}\noutput:\n{out}", file=sys.stderr)
        print(f"{page}: {len(checks)} examples, {sum(len(c[2]) for c in checks)} shown values checked"
              + ("" if ok else ": FAILED"), file=sys.stderr)
        return ok
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    pages = sys.argv[2:] or DEFAULT_PAGES
    results = [run_page(binary, p) for p in pages]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
