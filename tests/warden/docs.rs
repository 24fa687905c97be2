//! The documentation runs as written: every shell example in README.md and
//! docs/*.md (but those marked `sh norun`) against a live server, its shown
//! output compared where it is stable (`tests/docs/run_docs.py`).

#[test]
#[ignore = "needs curl, jq and Python's requests; ./scripts/test installs them and runs this"]
fn every_documented_shell_example_runs_as_shown() {
    let o = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/docs/run_docs.py"
        ))
        .arg(env!("CARGO_BIN_EXE_warden"))
        .output()
        .expect("run tests/docs/run_docs.py (python3)");
    let report = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{report}");
    // It really ran the pages.
    for page in [
        "README.md:",
        "docs/admin-guide.md:",
        "docs/getting-a-token.md:",
        // Real authlib and openid-client clients with private_key_jwt.
        "docs/keys.md:",
        // A CI token from node-oidc-provider exchanged for warden's.
        "docs/ci-without-secrets.md:",
        // The operator's one-time console link.
        "docs/console.md:",
        // MCP servers and agents made with the official SDKs.
        "docs/mcp.md:",
    ] {
        assert!(report.contains(page), "{page} not run: {report}");
    }
}
