//! Load benchmark: starts a real `warden serve` on a fresh database, creates
//! accounts and a resource server, then drives the token, refresh,
//! introspection and JWKS endpoints with a fixed number of connections for a
//! fixed time and prints requests/s and latency percentiles per endpoint.
//! With `--node`, does the same against node-oidc-provider (installed from
//! npm into target/bench-node) and prints the ratios. Last, a flood of
//! wrong secrets from 32 addresses, and how fast correct clients never
//! seen before are served during it (`flood.rs`).
//!
//!     cargo bench --bench load -- [--seconds 10] [--connections 32]
//!         [--database sqlite|postgres] [--node] [--only jwks]
//!
//! WARDEN_BENCH_BIN=path runs that warden binary instead of this build's.
//! PostgreSQL needs WARDEN_BENCH_POSTGRES_URL (scripts/bench starts a
//! throwaway cluster and sets it). Numbers are for orientation on the
//! machine at hand; nothing here asserts a threshold.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::Value;

struct Args {
    seconds: u64,
    connections: usize,
    database: String,
    node: bool,
    /// Exit non-zero if any endpoint had an error or no success (CI smoke).
    check: bool,
}

/// `--only TEXT`: drive only the endpoints whose name contains TEXT (for
/// profiling one of them).
static ONLY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn parse_args() -> Args {
    let mut a = Args {
        seconds: 10,
        connections: 32,
        database: "sqlite".into(),
        node: false,
        check: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.seconds),
            "--connections" => {
                a.connections = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(a.connections)
            }
            "--database" => a.database = it.next().unwrap_or(a.database),
            "--node" => a.node = true,
            "--check" => a.check = true,
            "--only" => {
                let _ = ONLY.set(it.next().unwrap_or_default());
            }
            "--bench" => {}
            other => eprintln!("load: ignoring argument {other}"),
        }
    }
    a
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

/// A child process killed on drop.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone)]
struct Cred {
    id: String,
    secret: String,
}

/// One endpoint's result.
pub struct Outcome {
    name: String,
    ok: u64,
    errors: u64,
    seconds: f64,
    hist: Histogram<u64>,
    /// The server's CPU time (user + system, all threads) per successful
    /// request, in microseconds: steadier than req/s on a shared machine.
    cpu_us: f64,
    /// The same for this load generator, which shares the machine.
    client_cpu_us: f64,
}

impl Outcome {
    /// Nothing run yet; `seconds` 0 marks an endpoint that was not driven.
    pub fn empty(name: &str) -> Self {
        Self {
            name: name.into(),
            ok: 0,
            errors: 0,
            seconds: 0.0,
            hist: new_hist(),
            cpu_us: 0.0,
            client_cpu_us: 0.0,
        }
    }
    fn rps(&self) -> f64 {
        self.ok as f64 / self.seconds
    }
    fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// One connection's request stream: what to send next, and whether the
/// answer was a success (a worker may update its state from it).
pub trait Worker: Send {
    fn request(&mut self) -> &[u8];
    fn check(&mut self, status: u16, body: &[u8]) -> bool;
}

/// The same request every time; success is a 200 whose body passes `ok`.
pub struct Fixed {
    pub req: Vec<u8>,
    pub ok: fn(&[u8]) -> bool,
}

impl Worker for Fixed {
    fn request(&mut self) -> &[u8] {
        &self.req
    }
    fn check(&mut self, status: u16, body: &[u8]) -> bool {
        status == 200 && (self.ok)(body)
    }
}

pub fn any(_: &[u8]) -> bool {
    true
}

pub fn active(body: &[u8]) -> bool {
    body.starts_with(b"{\"active\":true")
}

/// Follows its own refresh-token chain: each answer's token is the next
/// request's.
struct Refresher {
    host: String,
    cred: Cred,
    req: Vec<u8>,
}

impl Refresher {
    fn build(host: &str, cred: &Cred, rt: &str) -> Vec<u8> {
        http1::post_form(
            host,
            "/oauth/token",
            (&cred.id, &cred.secret),
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
    }
}

impl Worker for Refresher {
    fn request(&mut self) -> &[u8] {
        &self.req
    }
    fn check(&mut self, status: u16, body: &[u8]) -> bool {
        match http1::json_str(body, "refresh_token") {
            Some(rt) if status == 200 => {
                self.req = Self::build(&self.host, &self.cred, rt);
                true
            }
            _ => false,
        }
    }
}

/// An account's ES256 key pair, registered with warden (`private_key_jwt`).
#[derive(Clone)]
struct KeyCred {
    client_id: String,
    pair: std::sync::Arc<aws_lc_rs::signature::EcdsaKeyPair>,
}

/// A fresh client assertion per request, signed with the account's key
/// (the signing is the load generator's CPU, not warden's).
struct Assertor {
    host: String,
    aud: String,
    key: KeyCred,
    n: u64,
    req: Vec<u8>,
}

impl Assertor {
    fn assertion(&mut self) -> String {
        use data_encoding::BASE64URL_NOPAD as B64;
        self.n += 1;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = B64.encode(br#"{"alg":"ES256","kid":"bench"}"#);
        let claims = serde_json::json!({"iss": self.key.client_id, "sub": self.key.client_id,
            "aud": self.aud, "exp": now + 300, "jti": format!("{}-{}-{}", std::process::id(), now, self.n)});
        let input = format!("{header}.{}", B64.encode(claims.to_string().as_bytes()));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self
            .key
            .pair
            .sign(&rng, input.as_bytes())
            .unwrap_or_else(|_| unreachable!("signing cannot fail"));
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}

impl Worker for Assertor {
    fn request(&mut self) -> &[u8] {
        let jwt = self.assertion();
        self.req = http1::post_form_plain(
            &self.host,
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &jwt),
                ("resource", "https://api.example.com"),
            ],
        );
        &self.req
    }
    fn check(&mut self, status: u16, _body: &[u8]) -> bool {
        status == 200
    }
}

/// Registers an ES256 key for each account through the CLI; `None` for a
/// build that cannot (its scenario is skipped).
fn register_keys(
    bin: &str,
    env: &[(&str, String)],
    accounts: &[Cred],
    dir: &std::path::Path,
) -> Option<Vec<KeyCred>> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use data_encoding::BASE64URL_NOPAD as B64;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut out = Vec::new();
    for (i, c) in accounts.iter().enumerate() {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).ok()?;
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).ok()?;
        let point = pair.public_key().as_ref().to_vec();
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "bench",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])});
        let file = dir.join(format!("key-{i}.json"));
        std::fs::write(&file, jwk.to_string()).ok()?;
        let ok = Command::new(bin)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["accounts", "credentials", "add-key", &c.id, "--jwk"])
            .arg(&file)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return None;
        }
        out.push(KeyCred {
            client_id: c.id.clone(),
            pair: std::sync::Arc::new(pair),
        });
    }
    Some(out)
}

/// Trusts the stand-in issuer for each account (subject `bench-N`)
/// through the CLI, and returns one token per connection; `None` for a
/// build that cannot (its scenario is skipped).
fn register_federated(
    bin: &str,
    env: &[(&str, String)],
    accounts: &[Cred],
    issuer: &issuer::Issuer,
    connections: usize,
) -> Option<Vec<(String, String)>> {
    for (i, c) in accounts.iter().enumerate() {
        let ok = Command::new(bin)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["accounts", "credentials", "add-federated", &c.id])
            .args(["--issuer", &issuer.url, "--subject", &format!("bench-{i}")])
            .args([
                "--audience",
                "https://warden.bench",
                "--claim",
                "repository_id=1001",
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return None;
        }
    }
    Some(
        (0..connections)
            .map(|i| {
                let token = issuer.token(
                    &format!("bench-{}", i % accounts.len()),
                    "https://warden.bench",
                );
                // A federated grant names its account (the default).
                (token, accounts[i % accounts.len()].id.clone())
            })
            .collect(),
    )
}

/// CPU time a process has used so far (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line, in clock ticks (100/s).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// Runs each worker on its own connection for `seconds` against the
/// server process `pid`.
pub async fn drive(
    name: &str,
    addr: &str,
    pid: u32,
    seconds: u64,
    workers: Vec<Box<dyn Worker>>,
) -> Outcome {
    if workers.is_empty() || ONLY.get().is_some_and(|o| !name.contains(o.as_str())) {
        return Outcome::empty(name);
    }
    let cpu_before = cpu_seconds(pid);
    let own_before = cpu_seconds(std::process::id());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut w in workers {
        let addr = addr.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut conn = http1::Conn::new(&addr);
            let mut hist = new_hist();
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                let good = match conn.send(w.request()).await {
                    Some((status, body)) => w.check(status, body),
                    None => false,
                };
                if good {
                    ok += 1;
                    let _ = hist.record(t.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (ok, errors, hist)
        }));
    }
    let mut total = Outcome::empty(name);
    for t in tasks {
        if let Ok((ok, errors, hist)) = t.await {
            total.ok += ok;
            total.errors += errors;
            let _ = total.hist.add(&hist);
        }
    }
    total.seconds = start.elapsed().as_secs_f64();
    total.cpu_us = (cpu_seconds(pid) - cpu_before) * 1e6 / total.ok.max(1) as f64;
    total.client_cpu_us =
        (cpu_seconds(std::process::id()) - own_before) * 1e6 / total.ok.max(1) as f64;
    total
}

pub fn new_hist() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid bounds"))
}

async fn get_token(
    client: &reqwest::Client,
    base: &str,
    c: &Cred,
    extra: &[(&str, &str)],
) -> Value {
    let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
    form.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let r = client
        .post(format!("{base}/oauth/token"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(&form)
        .send()
        .await;
    match r {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// An API registered with declared permissions (`risks:read`, `risks:write`).
const DECLARING_API: &str = "https://risks.example.com";

/// What the secretless scenarios present, when the build can register it:
/// each account's key pair, and one external issuer's token per connection.
struct Secretless {
    keys: Option<Vec<KeyCred>>,
    federated: Option<Vec<(String, String)>>,
}

/// The scenarios against a warden at `host` (`127.0.0.1:port`).
async fn bench_warden(
    host: &str,
    pid: u32,
    accounts: Vec<Cred>,
    rs: Cred,
    declaring: bool,
    secretless: Secretless,
    args: &Args,
) -> Vec<Outcome> {
    let Secretless { keys, federated } = secretless;
    let api = "https://api.example.com";
    let base = format!("http://{host}");
    let client = reqwest::Client::new();
    let pick = |i: usize| &accounts[i % accounts.len()];
    let n = args.connections;
    let mut out = Vec::new();

    // A client-credentials request per connection, for `resource`.
    let token_workers = |resource: &str| -> Vec<Box<dyn Worker>> {
        (0..n)
            .map(|i| {
                let c = pick(i);
                let req = http1::post_form(
                    host,
                    "/oauth/token",
                    (&c.id, &c.secret),
                    &[("grant_type", "client_credentials"), ("resource", resource)],
                );
                Box::new(Fixed { req, ok: any }) as Box<dyn Worker>
            })
            .collect()
    };
    let token = token_workers(api);
    out.push(drive("token (client_credentials)", host, pid, args.seconds, token).await);

    // Skipped (no workers) for a build that cannot register the API.
    let declared = if declaring {
        token_workers(DECLARING_API)
    } else {
        Vec::new()
    };
    out.push(
        drive(
            "token (declared permissions)",
            host,
            pid,
            args.seconds,
            declared,
        )
        .await,
    );

    let mut refresh: Vec<Box<dyn Worker>> = Vec::new();
    for i in 0..n {
        let c = pick(i).clone();
        let t = get_token(&client, &base, &c, &[("resource", api)]).await;
        let req = Refresher::build(host, &c, t["refresh_token"].as_str().unwrap_or_default());
        refresh.push(Box::new(Refresher {
            host: host.to_owned(),
            cred: c,
            req,
        }));
    }
    out.push(drive("token (refresh_token)", host, pid, args.seconds, refresh).await);

    // A fresh client assertion per request, verified against the account's
    // registered key (warm cache) and its jti spent: one signature
    // verification and one write more than a secret.
    let assertors: Vec<Box<dyn Worker>> = match &keys {
        Some(keys) if !keys.is_empty() => (0..n)
            .map(|i| {
                Box::new(Assertor {
                    host: host.to_owned(),
                    aud: format!("{base}/oauth/token"),
                    key: keys[i % keys.len()].clone(),
                    n: 0,
                    req: Vec::new(),
                }) as Box<dyn Worker>
            })
            .collect(),
        _ => Vec::new(),
    };
    out.push(
        drive(
            "token (private_key_jwt)",
            host,
            pid,
            args.seconds,
            assertors,
        )
        .await,
    );

    // An external issuer's token per connection (the same one each time,
    // as a pod presents its projected token), exchanged by jwt-bearer:
    // one indexed read and one signature verification with the issuer's
    // cached key, no write.
    let exchangers: Vec<Box<dyn Worker>> = federated
        .iter()
        .flatten()
        .map(|(token, client_id)| {
            let req = http1::post_form_plain(
                host,
                "/oauth/token",
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", token),
                    ("client_id", client_id),
                    ("resource", api),
                ],
            );
            Box::new(Fixed { req, ok: any }) as Box<dyn Worker>
        })
        .collect();
    out.push(drive("token (jwt-bearer)", host, pid, args.seconds, exchangers).await);

    let mut intro: Vec<Box<dyn Worker>> = Vec::new();
    for i in 0..n {
        let t = get_token(&client, &base, pick(i), &[("resource", api)]).await;
        let token = t["access_token"].as_str().unwrap_or_default();
        let req = http1::post_form(
            host,
            "/oauth/introspect",
            (&rs.id, &rs.secret),
            &[("token", token), ("source_ip", "203.0.113.7")],
        );
        intro.push(Box::new(Fixed { req, ok: active }));
    }
    out.push(drive("introspect (live checks)", host, pid, args.seconds, intro).await);

    let jwks: Vec<Box<dyn Worker>> = (0..n)
        .map(|_| {
            Box::new(Fixed {
                req: http1::get(host, "/.well-known/jwks.json"),
                ok: any,
            }) as Box<dyn Worker>
        })
        .collect();
    out.push(drive("jwks", host, pid, args.seconds, jwks).await);
    out
}

fn warden_cli(bin: &str, env: &[(&str, String)], args: &[&str]) -> Value {
    let out = Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
        Ok(o) => panic!(
            "warden {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run warden: {e}"),
    }
}

async fn run_warden(args: &Args) -> Vec<Outcome> {
    // WARDEN_BENCH_BIN runs another build, e.g. one with frame pointers
    // for `perf record -g`.
    let bin = std::env::var("WARDEN_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_warden").to_owned());
    let bin = bin.as_str();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let db = match args.database.as_str() {
        "postgres" => {
            let admin = std::env::var("WARDEN_BENCH_POSTGRES_URL")
                .unwrap_or_else(|_| panic!("set WARDEN_BENCH_POSTGRES_URL or use scripts/bench"));
            let name = format!("warden_bench_{}", std::process::id());
            let pool = sqlx::PgPool::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&pool)
            .await;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            format!(
                "{}/{name}",
                admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin)
            )
        }
        _ => format!("sqlite://{}/bench.db", dir.path().display()),
    };
    let port = free_port();
    let env = vec![
        ("WARDEN_DATABASE_URL", db),
        (
            "WARDEN_KEYS_DIR",
            dir.path().join("keys").display().to_string(),
        ),
        ("WARDEN_LISTEN", format!("127.0.0.1:{port}")),
        // The stand-in issuer of the jwt-bearer scenario is plain http.
        ("WARDEN_FEDERATION_ALLOW_HTTP", "true".to_owned()),
        // The flood scenario's clients come from many addresses, named in
        // X-Forwarded-For by the load generator standing in for a proxy.
        ("WARDEN_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
        // The accounts hold a risk tracker's roles (the example catalog).
        (
            "WARDEN_ROLE_CATALOG",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/catalogs/risk-platform.toml"
            )
            .to_owned(),
        ),
    ];
    let n = args.connections.min(32);
    // `count` accounts named `prefix-N` holding `role`, through the CLI.
    let create = |prefix: &str, role: &str, count: usize| -> Vec<Cred> {
        (0..count)
            .map(|i| {
                let name = format!("{prefix}-{i}");
                let v = warden_cli(
                    bin,
                    &env,
                    &[
                        "accounts", "create", "--name", &name, "--role", role, "--json",
                    ],
                );
                Cred {
                    id: v["client_id"].as_str().unwrap_or_default().into(),
                    secret: v["client_secret"].as_str().unwrap_or_default().into(),
                }
            })
            .collect()
    };
    let accounts = create("bench", "risk-editor", n);
    // Accounts the flood scenario asks for a token once each: never
    // verified before, so never in the verified-secret cache.
    let fresh = create("fresh", "viewer", 16);
    let victims = accounts.clone();
    let rs = warden_cli(
        bin,
        &env,
        &[
            "resource-servers",
            "create",
            "--name",
            "bench api",
            "--audience",
            "https://api.example.com",
            "--json",
        ],
    );
    let rs = Cred {
        id: rs["client_id"].as_str().unwrap_or_default().into(),
        secret: rs["client_secret"].as_str().unwrap_or_default().into(),
    };
    // An API that declares its permissions: its tokens carry only those.
    // (A build from before declared permissions cannot register it; its
    // scenario is then skipped, so older builds can still be compared.)
    let declaring = Command::new(bin)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args([
            "resource-servers",
            "create",
            "--name",
            "risks api",
            "--audience",
            DECLARING_API,
            "--permission",
            "risks:read=Read risks",
            "--permission",
            "risks:write=Change risks",
            "--json",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    let keys = register_keys(bin, &env, &accounts, dir.path());
    let issuer = issuer::Issuer::start().await;
    let federated = register_federated(bin, &env, &accounts, &issuer, args.connections);
    // The server runs with its default settings, log level included; its
    // log goes to a file, shown if it never becomes ready.
    let log_path = dir.path().join("warden.log");
    let log = std::fs::File::create(&log_path).unwrap_or_else(|e| panic!("log file: {e}"));
    let child = Command::new(bin)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start warden: {e}"));
    let _server = Proc(child);
    let host = format!("127.0.0.1:{port}");
    if !wait_ready(&format!("http://{host}/readyz")).await {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        panic!("warden never became ready; its log:\n{log}");
    }
    print_rss("warden idle", _server.0.id());
    let mut out = bench_warden(
        &host,
        _server.0.id(),
        accounts,
        rs,
        declaring,
        Secretless { keys, federated },
        args,
    )
    .await;
    out.push(flood::run(&host, args.connections, &victims, &fresh).await);
    println!(
        "(the stand-in issuer served {} discovery and JWKS requests)",
        issuer.served.load(std::sync::atomic::Ordering::Relaxed)
    );
    print_rss("warden after load", _server.0.id());
    out
}

async fn wait_ready(url: &str) -> bool {
    for _ in 0..200 {
        if matches!(reqwest::get(url).await, Ok(r) if r.status().is_success()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn print_rss(label: &str, pid: u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    if let Some(l) = status.lines().find(|l| l.starts_with("VmRSS")) {
        println!("{label}: {}", l.trim_start_matches("VmRSS:").trim());
    }
}

fn report(title: &str, rows: &[Outcome]) {
    println!("\n{title}");
    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>9} {:>11} {:>11} {:>8}",
        "endpoint", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "cpu µs/req", "client µs", "errors"
    );
    // Endpoints skipped by --only (or not offered) ran for no time.
    for r in rows.iter().filter(|r| r.seconds > 0.0) {
        println!(
            "{:<28} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>11.1} {:>11.1} {:>8}",
            r.name,
            r.rps(),
            r.ms(0.5),
            r.ms(0.99),
            r.ms(0.999),
            r.cpu_us,
            r.client_cpu_us,
            r.errors
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = parse_args();
    println!(
        "warden load benchmark: {} connections, {} s per endpoint, database {}, {} cores",
        args.connections,
        args.seconds,
        args.database,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let warden = run_warden(&args).await;
    report(&format!("warden ({})", args.database), &warden);
    let ran = |o: &&Outcome| o.seconds > 0.0;
    if args.check && warden.iter().filter(ran).any(|o| o.errors > 0 || o.ok == 0) {
        eprintln!("load: smoke check failed: an endpoint had errors or no successful request");
        std::process::exit(1);
    }
    if args.node {
        let node = node::run(&args).await;
        report("node-oidc-provider", &node);
        println!("\nratios (warden / node-oidc-provider, req/s)");
        for (w, n) in warden.iter().zip(node.iter()) {
            if n.ok > 0 && w.ok > 0 && w.name.split(' ').next() == n.name.split(' ').next() {
                println!("{:<28} {:>6.1}x", w.name, w.rps() / n.rps());
            }
        }
    }
}

mod flood;
mod http1;
mod issuer;
mod node;
