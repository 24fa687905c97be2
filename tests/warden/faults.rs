//! Faults, with real processes: the database going away and coming back,
//! SIGTERM during a request, and `kill -9` under load.
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::replicas::{Cluster, ISSUER, Replica, introspect, token, token_ok};

const API: &str = "https://api.example.com";

/// A PostgreSQL cluster of this test's own (started with scripts/pg.sh),
/// so stopping it disturbs no other test.
struct OwnPostgres {
    url: String,
    tmp: String,
    bin: String,
    port: String,
}

fn as_postgres_user(cmd: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", cmd]);
        c
    } else {
        Command::new(cmd)
    }
}

impl OwnPostgres {
    fn start() -> Self {
        let o = Command::new("bash")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("-c")
            .arg(r#"source scripts/pg.sh && start_cluster && printf '%s\n%s\n%s\n' "$PG_URL" "$PG_TMP" "$PG_BIN""#)
            .output()
            .expect("start a PostgreSQL cluster");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8(o.stdout).expect("utf-8");
        let mut lines = out.lines().map(str::to_owned);
        let url = lines.next().expect("url");
        let tmp = lines.next().expect("tmp");
        let bin = lines.next().expect("bin");
        let port = url
            .rsplit_once(':')
            .and_then(|(_, p)| p.split('/').next())
            .expect("port")
            .to_owned();
        Self {
            url,
            tmp,
            bin,
            port,
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let st = as_postgres_user(&format!("{}/pg_ctl", self.bin))
            .args(["-D", &format!("{}/data", self.tmp)])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("pg_ctl");
        assert!(st.success(), "pg_ctl {args:?}");
    }

    fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    fn start_again(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=400 -c fsync=off",
            self.port, self.tmp
        );
        let log = format!("{}/server.log", self.tmp);
        self.pg_ctl(&["-l", &log, "-w", "-t", "60", "-o", &opts, "start"]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = as_postgres_user(&format!("{}/pg_ctl", self.bin))
            .args([
                "-D",
                &format!("{}/data", self.tmp),
                "-m",
                "immediate",
                "stop",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

async fn expect_unavailable(r: reqwest::Response) {
    let st = r.status().as_u16();
    let retry = r.headers().get("retry-after").is_some();
    let body: Value = r.json().await.expect("a JSON body");
    assert_eq!(st, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(retry, "503 carries Retry-After");
}

/// With the database stopped: token and introspection answer 503 in the
/// OAuth format (never `active: true`), the admin API 503 as a problem
/// document, `/healthz` 200 and `/readyz` 503; when it returns, warden
/// recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_and_recovers() {
    if crate::harness::without_postgres() {
        return;
    }
    let pg = OwnPostgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Cluster::on_database(dir, &pg.url, &[]);
    let x = c.account("x", "admin");
    let rs = c.resource_server(API);
    c.start(1).await;
    let (r, http) = (c.r(0), c.http.clone());
    let t = token_ok(&http, r, &x, API).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let admin = token_ok(&http, r, &x, ISSUER).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(introspect(&http, r, &rs, &t, None).await["active"], true);

    pg.stop();
    let (tok, intro, api, health, ready) = tokio::join!(
        token(&http, r, &x, API),
        http.post(r.url("/oauth/introspect"))
            .basic_auth(&rs.client_id, Some(&rs.secret))
            .form(&[("token", t.as_str())])
            .send(),
        http.get(r.url("/api/v1/service-accounts"))
            .bearer_auth(&admin)
            .send(),
        http.get(r.url("/healthz")).send(),
        http.get(r.url("/readyz")).send(),
    );
    expect_unavailable(tok).await;
    expect_unavailable(intro.expect("introspect")).await;
    let api = api.expect("api");
    assert_eq!(api.status(), 503);
    assert_eq!(api.headers()["content-type"], "application/problem+json");
    assert_eq!(health.expect("healthz").status(), 200);
    assert_eq!(ready.expect("readyz").status(), 503);

    pg.start_again();
    let t0 = Instant::now();
    loop {
        let resp = token(&http, r, &x, API).await;
        if resp.status() == 200 {
            break;
        }
        assert_eq!(resp.status(), 503, "only 503 while recovering");
        assert!(t0.elapsed() < Duration::from_secs(30), "no recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(introspect(&http, r, &rs, &t, None).await["active"], true);
    let ready = http.get(r.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
    let log = std::fs::read_to_string(&r.log).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}

/// SIGTERM: readiness drops at once, a request already in flight finishes,
/// new connections are refused after the shutdown delay, and the process
/// exits cleanly within a bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/w.db", dir.path().display());
    let mut c = Cluster::on_database(dir, &db, &[("WARDEN_SHUTDOWN_DELAY", "1s")]);
    let x = c.account("x", "viewer");
    c.start(1).await;
    let addr = c.r(0).base.trim_start_matches("http://").to_owned();

    // A token request whose body is still arriving when SIGTERM lands.
    let body = "grant_type=client_credentials";
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let auth = data_encoding::BASE64.encode(format!("{}:{}", x.client_id, x.secret).as_bytes());
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    );
    conn.write_all(head.as_bytes()).await.expect("write head");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signalled = Instant::now();
    c.r(0).signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = c
        .http
        .get(c.r(0).url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503, "readiness drops at once");
    assert_eq!(
        ready.json::<Value>().await.expect("json"),
        json!({"status": "draining"})
    );

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "new connections are refused after the shutdown delay"
    );

    // The in-flight request completes normally.
    conn.write_all(&body.as_bytes()[10..])
        .await
        .expect("write rest");
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut resp))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("access_token"));

    let replica: &mut Replica = &mut c.replicas[0];
    let status = loop {
        if let Some(st) = replica.child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "did not exit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

/// `kill -9` in the middle of admin writes, CLI writes on the same SQLite
/// file, and token traffic: after a restart every change that was
/// acknowledged is there, and the database is intact.
async fn kill_9_loses_no_acknowledged_change(db: String, dir: tempfile::TempDir) {
    let sqlite = db.starts_with("sqlite:");
    let mut c = Cluster::on_database(dir, &db, &[]);
    let root = c.account("root", "admin");
    c.start(1).await;
    let http = c.http.clone();
    let admin = token_ok(&http, c.r(0), &root, ISSUER).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let base = c.r(0).base.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Writers through the admin API, recording what was acknowledged.
    let mut writers = Vec::new();
    for w in 0..3 {
        let (http, base, admin, stop) = (http.clone(), base.clone(), admin.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acked: Vec<(String, String, String)> = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let r = http
                    .post(format!("{base}/api/v1/service-accounts"))
                    .bearer_auth(&admin)
                    .json(&json!({"name": format!("w{w}-{i}"), "roles": ["viewer"]}))
                    .send()
                    .await;
                let Ok(r) = r else { break };
                if r.status() != 201 {
                    break;
                }
                let Ok(v) = r.json::<Value>().await else {
                    break;
                };
                acked.push((
                    v["id"].as_str().unwrap_or_default().to_owned(),
                    v["client_id"].as_str().unwrap_or_default().to_owned(),
                    v["client_secret"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            acked
        }));
    }
    // Token traffic alongside.
    let traffic = {
        let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
        let (id, secret) = (root.client_id.clone(), root.secret.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = http
                    .post(format!("{base}/oauth/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
            }
        })
    };
    // The CLI writing to the same database at the same time.
    let mut cli_created = Vec::new();
    for i in 0..4 {
        let v = c.cli_json(&[
            "accounts",
            "create",
            "--name",
            &format!("cli-{i}"),
            "--role",
            "viewer",
            "--json",
        ]);
        cli_created.push(v["id"].as_str().unwrap_or_default().to_owned());
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    c.r(0).signal("KILL");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    let _ = traffic.await;
    assert!(acked.len() >= 5, "the load ran: {} creates", acked.len());

    // Restart on the same database and keys.
    c.replicas.clear();
    c.start(1).await;
    let r = c.r(0);
    let admin = token_ok(&http, r, &root, ISSUER).await["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let status_of = |id: &str| {
        http.get(r.url(&format!("/api/v1/service-accounts/{id}")))
            .bearer_auth(&admin)
            .send()
    };
    for (id, client_id, secret) in &acked {
        let resp = status_of(id).await.expect("get");
        assert_eq!(resp.status(), 200, "acknowledged account {id} lost");
        let t = http
            .post(r.url("/oauth/token"))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token");
        assert_eq!(t.status(), 200, "secret of {id} lost");
    }
    for id in &cli_created {
        let resp = status_of(id).await.expect("get");
        assert_eq!(resp.status(), 200, "CLI-created account {id} lost");
    }
    if sqlite {
        let pool = sqlx::SqlitePool::connect(&db).await.expect("open");
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .expect("integrity_check");
        assert_eq!(check, "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/w.db", dir.path().display());
    kill_9_loses_no_acknowledged_change(db, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_postgres() {
    if crate::harness::without_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = crate::harness::fresh_database(crate::harness::Backend::Postgres, &dir).await;
    kill_9_loses_no_acknowledged_change(db, dir).await;
}
