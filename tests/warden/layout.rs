//! The source tree's shape (issue 14): each layer imports only the layers
//! below it, and no file grows past what a reader takes in at once.
use std::path::{Path, PathBuf};

/// Layers from the top; each may use only the ones named after it.
/// `cli` starts the server (`app`) or runs management operations itself;
/// `app` applies the operator's role catalog (`manage`) before serving.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "cli",
        &["app", "manage", "db", "domain", "crypto", "config"],
    ),
    (
        "app",
        &[
            "http",
            "oauth",
            "manage",
            "db",
            "crypto",
            "config",
            "connections",
        ],
    ),
    ("connections", &["domain", "ratelimit"]),
    (
        "http",
        &["oauth", "manage", "db", "domain", "crypto", "config"],
    ),
    ("manage", &["db", "domain", "crypto"]),
    (
        "oauth",
        &["db", "domain", "crypto", "bookkeeping", "ratelimit"],
    ),
    ("db", &["domain", "bookkeeping"]),
    ("crypto", &["domain"]),
    ("domain", &[]),
];

/// Modules any layer may use: small leaves with no dependencies inside
/// the crate that matter here.
const ANYWHERE: &[&str] = &["now_unix"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file belongs to (`src/db/accounts.rs` → `db`).
fn layer_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for f in &files {
        let layer = layer_of(f);
        let Some((_, allowed)) = LAYERS.iter().find(|(l, _)| *l == layer) else {
            continue;
        };
        let text = std::fs::read_to_string(f).expect("read");
        // Unit tests may reach up to set a scene: a `mod tests` block, or
        // a `*_tests.rs` file a module includes as its tests.
        if f.to_string_lossy().ends_with("_tests.rs") {
            continue;
        }
        let code = text.split("\nmod tests {").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            for (pos, _) in line.match_indices("crate::") {
                let used: String = line[pos + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let ok = used == layer
                    || allowed.contains(&used.as_str())
                    || ANYWHERE.contains(&used.as_str())
                    || !LAYERS.iter().any(|(l, _)| *l == used);
                if !ok {
                    wrong.push(format!("{}:{}: {layer} uses {used}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_source_file_is_over_400_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    // The workspace's other crates too.
    for krate in ["warden-token/src", "warden-resource/src"] {
        rust_files(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(krate),
            &mut files,
        );
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).expect("read").lines().count();
            (n > 400).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by concern:\n{}",
        long.join("\n")
    );
}

/// `cargo tree ARGS` in the workspace: whether it succeeded, stdout, stderr.
fn cargo_tree(args: &[&str]) -> (bool, String, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = std::process::Command::new(cargo)
        .arg("tree")
        .arg("--locked")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The normal dependencies of `krate`, one package per line; none of
/// `banned` among them.
fn assert_depends_on_none(krate: &str, needs: &str, banned: &[&str]) {
    let (ok, tree, err) = cargo_tree(&["-p", krate, "-e", "normal", "--prefix", "none"]);
    assert!(ok, "{err}");
    assert!(tree.contains(needs), "{tree}");
    for b in banned {
        assert!(
            !tree.lines().any(|l| l.starts_with(&format!("{b} "))),
            "{krate} depends on {b}:\n{tree}"
        );
    }
}

/// The token contract stays pure: `warden-token` depends on serde and
/// aws-lc-rs (and their own), never on a runtime, a database or HTTP, so
/// a resource server can take it without warden's server.
#[test]
fn the_token_contract_has_no_runtime_database_or_http() {
    assert_depends_on_none(
        "warden-token",
        "aws-lc-rs",
        &["tokio", "sqlx", "hyper", "axum", "reqwest", "tower"],
    );
}

/// The kit needs no part of warden's server: `cargo tree -p
/// warden-resource -i sqlx` finds nothing, and neither the server crate
/// nor its database and hashing crates are in its tree.
#[test]
fn the_kit_has_no_database_and_no_server() {
    assert_depends_on_none(
        "warden-resource",
        "warden-token",
        &["sqlx", "warden", "argon2", "libsqlite3-sys"],
    );
    let (ok, out, err) = cargo_tree(&["-p", "warden-resource", "-i", "sqlx"]);
    // sqlx is not in the kit's tree at all, or nothing of the kit leads to it.
    let absent = !ok && err.contains("did not match any packages");
    assert!(
        absent || (ok && !out.contains("warden-resource")),
        "{out}{err}"
    );
}
