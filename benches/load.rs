//! Load benchmark: starts a real `warden serve` on a fresh database, creates
//! accounts and a resource server, then drives the token, refresh,
//! introspection and JWKS endpoints with a fixed number of connections for a
//! fixed time and prints requests/s and latency percentiles per endpoint.
//! With `--node`, does the same against node-oidc-provider (installed from
//! npm into target/bench-node) and prints the ratios.
//!
//!     cargo bench --bench load -- [--seconds 10] [--connections 32]
//!         [--database sqlite|postgres] [--node]
//!
//! PostgreSQL needs WARDEN_BENCH_POSTGRES_URL (scripts/bench starts a
//! throwaway cluster and sets it). Numbers are for orientation on the
//! machine at hand; nothing here asserts a threshold.
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::Value;

struct Args {
    seconds: u64,
    connections: usize,
    database: String,
    node: bool,
}

fn parse_args() -> Args {
    let mut a = Args { seconds: 10, connections: 32, database: "sqlite".into(), node: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.seconds),
            "--connections" => a.connections = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.connections),
            "--database" => a.database = it.next().unwrap_or(a.database),
            "--node" => a.node = true,
            "--bench" => {}
            other => eprintln!("load: ignoring argument {other}"),
        }
    }
    a
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(18080)
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
struct Outcome {
    name: String,
    ok: u64,
    errors: u64,
    seconds: f64,
    hist: Histogram<u64>,
}

impl Outcome {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.seconds
    }
    fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Drives `make` from `connections` workers for `seconds`; each worker has
/// its own HTTP connection and state (`seed` is its index).
async fn drive<F, Fut>(name: &str, connections: usize, seconds: u64, make: F) -> Outcome
where
    F: Fn(reqwest::Client, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Box<dyn FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send>>
        + Send,
{
    let make = Arc::new(make);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..connections {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap_or_default();
            let mut step = make(client, i).await;
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                if step().await {
                    ok += 1;
                    let _ = hist.record(t.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (ok, errors, hist)
        }));
    }
    let mut total = Outcome { name: name.into(), ok: 0, errors: 0, seconds: 0.0, hist: Histogram::new(3).unwrap_or_else(|_| unreachable!()) };
    for t in tasks {
        if let Ok((ok, errors, hist)) = t.await {
            total.ok += ok;
            total.errors += errors;
            let _ = total.hist.add(&hist);
        }
    }
    total.seconds = start.elapsed().as_secs_f64();
    total
}

type Step = Box<dyn FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send>;

/// 200 with a fully read body.
async fn ok200(r: reqwest::Result<reqwest::Response>) -> bool {
    match r {
        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
        _ => false,
    }
}

fn post_form(client: &reqwest::Client, url: &str, basic: &Cred, form: Vec<(String, String)>) -> reqwest::RequestBuilder {
    client.post(url).basic_auth(&basic.id, Some(&basic.secret)).form(&form)
}

async fn get_token(client: &reqwest::Client, base: &str, c: &Cred, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
    form.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let r = post_form(client, &format!("{base}/oauth/token"), c, form).send().await;
    match r {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// The four scenarios against a warden at `base`.
async fn bench_warden(base: &str, accounts: Vec<Cred>, rs: Cred, args: &Args) -> Vec<Outcome> {
    let api = "https://api.example.com".to_owned();
    let mut out = Vec::new();
    let (b, accts) = (base.to_owned(), Arc::new(accounts));

    let (b1, a1, api1) = (b.clone(), accts.clone(), api.clone());
    out.push(
        drive("token (client_credentials)", args.connections, args.seconds, move |client, i| {
            let (b, c, api) = (b1.clone(), a1[i % a1.len()].clone(), api1.clone());
            async move {
                Box::new(move || {
                    let req = post_form(&client, &format!("{b}/oauth/token"), &c, vec![
                        ("grant_type".into(), "client_credentials".into()),
                        ("resource".into(), api.clone()),
                    ]);
                    Box::pin(async move { ok200(req.send().await).await })
                        as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
                }) as Step
            }
        })
        .await,
    );

    let (b2, a2, api2) = (b.clone(), accts.clone(), api.clone());
    out.push(
        drive("token (refresh_token)", args.connections, args.seconds, move |client, i| {
            let (b, c, api) = (b2.clone(), a2[i % a2.len()].clone(), api2.clone());
            async move {
                let first = get_token(&client, &b, &c, &[("resource", &api)]).await;
                let rt = Arc::new(std::sync::Mutex::new(first["refresh_token"].as_str().unwrap_or_default().to_owned()));
                Box::new(move || {
                    let current = rt.lock().map(|g| g.clone()).unwrap_or_default();
                    let req = post_form(&client, &format!("{b}/oauth/token"), &c, vec![
                        ("grant_type".into(), "refresh_token".into()),
                        ("refresh_token".into(), current),
                    ]);
                    let rt = rt.clone();
                    Box::pin(async move {
                        let Ok(r) = req.send().await else { return false };
                        if r.status() != 200 {
                            return false;
                        }
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        match v["refresh_token"].as_str() {
                            Some(n) => {
                                if let Ok(mut g) = rt.lock() {
                                    *g = n.to_owned();
                                }
                                true
                            }
                            None => false,
                        }
                    }) as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
                }) as Step
            }
        })
        .await,
    );

    let (b3, a3, api3, rs3) = (b.clone(), accts.clone(), api.clone(), rs.clone());
    out.push(
        drive("introspect (live checks)", args.connections, args.seconds, move |client, i| {
            let (b, c, api, rs) = (b3.clone(), a3[i % a3.len()].clone(), api3.clone(), rs3.clone());
            async move {
                let t = get_token(&client, &b, &c, &[("resource", &api)]).await;
                let token = t["access_token"].as_str().unwrap_or_default().to_owned();
                Box::new(move || {
                    let req = post_form(&client, &format!("{b}/oauth/introspect"), &rs, vec![
                        ("token".into(), token.clone()),
                        ("source_ip".into(), "203.0.113.7".into()),
                    ]);
                    Box::pin(async move {
                        let Ok(r) = req.send().await else { return false };
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        v["active"] == true
                    }) as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
                }) as Step
            }
        })
        .await,
    );

    let b4 = b.clone();
    out.push(
        drive("jwks", args.connections, args.seconds, move |client, _| {
            let b = b4.clone();
            async move {
                Box::new(move || {
                    let req = client.get(format!("{b}/.well-known/jwks.json"));
                    Box::pin(async move { ok200(req.send().await).await })
                        as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
                }) as Step
            }
        })
        .await,
    );
    out
}

fn warden_cli(bin: &str, env: &[(&str, String)], args: &[&str]) -> Value {
    let out = Command::new(bin).args(args).envs(env.iter().map(|(k, v)| (*k, v.as_str()))).output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
        Ok(o) => panic!("warden {args:?} failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("cannot run warden: {e}"),
    }
}

async fn run_warden(args: &Args) -> Vec<Outcome> {
    let bin = env!("CARGO_BIN_EXE_warden");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let db = match args.database.as_str() {
        "postgres" => {
            let admin = std::env::var("WARDEN_BENCH_POSTGRES_URL").unwrap_or_else(|_| panic!("set WARDEN_BENCH_POSTGRES_URL or use scripts/bench"));
            let name = format!("warden_bench_{}", std::process::id());
            let pool = sqlx::PgPool::connect(&admin).await.unwrap_or_else(|e| panic!("{e}"));
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&pool).await;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.unwrap_or_else(|e| panic!("{e}"));
            format!("{}/{name}", admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin))
        }
        _ => format!("sqlite://{}/bench.db", dir.path().display()),
    };
    let port = free_port();
    let env = vec![
        ("WARDEN_DATABASE_URL", db),
        ("WARDEN_KEYS_DIR", dir.path().join("keys").display().to_string()),
        ("WARDEN_LISTEN", format!("127.0.0.1:{port}")),
        ("WARDEN_LOG", "warn".to_owned()),
    ];
    let n = args.connections.min(32);
    let accounts: Vec<Cred> = (0..n)
        .map(|i| {
            let v = warden_cli(bin, &env, &["accounts", "create", "--name", &format!("bench-{i}"), "--role", "risk-editor", "--json"]);
            Cred { id: v["client_id"].as_str().unwrap_or_default().into(), secret: v["client_secret"].as_str().unwrap_or_default().into() }
        })
        .collect();
    let rs = warden_cli(bin, &env, &["resource-servers", "create", "--name", "bench api", "--audience", "https://api.example.com", "--json"]);
    let rs = Cred { id: rs["client_id"].as_str().unwrap_or_default().into(), secret: rs["client_secret"].as_str().unwrap_or_default().into() };
    let child = Command::new(bin)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start warden: {e}"));
    let _server = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/readyz")).await;
    print_rss("warden idle", _server.0.id());
    let out = bench_warden(&base, accounts, rs, args).await;
    print_rss("warden after load", _server.0.id());
    out
}

async fn wait_ready(url: &str) {
    for _ in 0..200 {
        if matches!(reqwest::get(url).await, Ok(r) if r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became ready");
}

fn print_rss(label: &str, pid: u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    if let Some(l) = status.lines().find(|l| l.starts_with("VmRSS")) {
        println!("{label}: {}", l.trim_start_matches("VmRSS:").trim());
    }
}

fn report(title: &str, rows: &[Outcome]) {
    println!("\n{title}");
    println!("{:<28} {:>10} {:>9} {:>9} {:>9} {:>8}", "endpoint", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors");
    for r in rows {
        println!(
            "{:<28} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8}",
            r.name,
            r.rps(),
            r.ms(0.5),
            r.ms(0.99),
            r.ms(0.999),
            r.errors
        );
    }
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    println!(
        "warden load benchmark: {} connections, {} s per endpoint, database {}, {} cores",
        args.connections,
        args.seconds,
        args.database,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let warden = run_warden(&args).await;
    report(&format!("warden ({})", args.database), &warden);
    if args.node {
        let node = node::run(&args).await;
        report("node-oidc-provider", &node);
        println!("\nratios (warden / node-oidc-provider, req/s)");
        for (w, n) in warden.iter().zip(node.iter()) {
            if n.ok > 0 && w.name.split(' ').next() == n.name.split(' ').next() {
                println!("{:<28} {:>6.1}x", w.name, w.rps() / n.rps());
            }
        }
    }
}

mod node;
