//! Building and running the server: `Application::build` connects the
//! database, applies migrations, loads keys and binds the listener, exposing
//! the bound address so tests can run it on port 0.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::bookkeeping::Bookkeeper;
use crate::config::Config;
use crate::crypto::keys::{KeyStore, load_or_create_secret};
use crate::crypto::refresh::RefreshCodec;
use crate::crypto::secrets::SecretVerifier;
use crate::db::Db;
use crate::http::AppState;
use crate::now_unix;
use crate::ratelimit::AuthLimiter;

/// The audience of tokens requested without `resource` when no
/// `WARDEN_DEFAULT_AUDIENCE` is set. Deliberately not the issuer: the admin
/// API only accepts tokens that asked for it by name.
pub const FALLBACK_AUDIENCE: &str = "urn:warden:default";

pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: Arc<AppState>,
}

/// Serves `/metrics` on its own listener until `stop` changes.
fn spawn_metrics(
    l: TcpListener,
    state: &Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let router = crate::http::metrics_router(state.clone());
    let config = state.config.clone();
    if let Ok(addr) = l.local_addr() {
        tracing::info!(%addr, "metrics listening");
    }
    tokio::spawn(async move {
        crate::connections::serve(l, router, &config, async move {
            let _ = stop.changed().await;
        })
        .await;
    })
}

/// The OAuth flows' context, from the settings and what start-up opened.
fn oauth_context(
    config: &Config,
    issuer: String,
    db: Db,
    keys: KeyStore,
    refresh_key: &[u8; 32],
) -> anyhow::Result<crate::oauth::Context> {
    let limiter = || AuthLimiter::new(config.auth_failures_per_client, config.auth_failures_per_ip);
    crate::oauth::refuse_issuer_as_default_audience(config.default_audience.as_deref(), &issuer)
        .map_err(anyhow::Error::msg)?;
    Ok(crate::oauth::Context {
        issuer,
        default_audience: config
            .default_audience
            .clone()
            .unwrap_or_else(|| FALLBACK_AUDIENCE.to_owned()),
        access_token_ttl_secs: config.access_token_ttl.as_secs(),
        refresh_token_ttl_secs: config.refresh_token_ttl.as_secs() as i64,
        db,
        keys,
        verifier: SecretVerifier::new(config.argon2_concurrency)?,
        refresh: RefreshCodec::new(refresh_key)?,
        bookkeeper: Bookkeeper::new(config.audit_token_events),
        verified: Default::default(),
        jwks: Default::default(),
        issuers: crate::oauth::issuers::Issuers::new(config.federation_allow_http)?,
        federation_client_id_optional: config.federation_client_id_optional,
        client_assertion_audience_strict: config.client_assertion_audience_strict,
        client_limiter: limiter(),
        rs_limiter: limiter(),
    })
}

/// Applies the role catalog the settings name (`WARDEN_ROLE_CATALOG`), at
/// start and by `warden migrate`; logs what it changed, if anything.
pub async fn apply_role_catalog(db: &Db, config: &Config) -> anyhow::Result<()> {
    let Some(path) = &config.role_catalog else {
        return Ok(());
    };
    let a = crate::manage::catalog::apply_file(db, path, now_unix())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for s in &a.skipped {
        tracing::warn!(
            catalog = %path.display(),
            "role catalog: role {s} is that organization's own role; the catalog's is left out until one of them is renamed"
        );
    }
    if !a.is_empty() {
        tracing::info!(
            catalog = %path.display(),
            permissions = a.permissions,
            roles = a.roles,
            additions = a.additions,
            "role catalog applied"
        );
    }
    Ok(())
}

/// Whether a warden with this issuer answers at it: its metadata names the
/// same issuer. For `warden console link`, whose link is only as good as
/// the server behind it; the error is the reason, in a few words.
pub async fn issuer_answers(issuer: &str) -> Result<(), String> {
    let out = crate::oauth::outbound::Outbound::new(true).map_err(|e| e.to_string())?;
    let url = format!("{issuer}/.well-known/oauth-authorization-server");
    let wait = std::time::Duration::from_secs(3);
    match tokio::time::timeout(wait, out.get_json(&url)).await {
        Err(_) => Err("no answer within 3 s".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok((v, _))) if v["issuer"] == issuer => Ok(()),
        Ok(Ok((v, _))) => Err(format!(
            "the server there has issuer {}",
            v["issuer"].as_str().unwrap_or("(none)")
        )),
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if let Some(issuer) = &config.issuer {
            crate::oauth::refuse_issuer_as_default_audience(
                config.default_audience.as_deref(),
                issuer,
            )
            .map_err(anyhow::Error::msg)?;
        }
        crate::crypto::keys::refuse_exposed_keys(&config.keys_dir).map_err(anyhow::Error::msg)?;
        let db = Db::connect(&config.database_url).await.with_context(|| {
            format!(
                "cannot open the database at {}",
                crate::config::redact_url(&config.database_url)
            )
        })?;
        db.migrate().await.context("cannot apply migrations")?;
        apply_role_catalog(&db, &config).await?;
        // Read once: the catalog changes only with a start.
        let scopes_supported = crate::manage::catalog::scopes_supported(&db)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the declared permissions: {e}"))?;
        let keys = KeyStore::open_with(&config.keys_dir, config.key_algorithm, now_unix())
            .context("cannot load signing keys")?;
        let refresh_key =
            load_or_create_secret(&config.keys_dir, crate::crypto::refresh::REFRESH_KEY_FILE)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (metrics)"))?,
            ),
            None => None,
        };
        warn_if_exposed(&config);
        let issuer = config.issuer_for(listener.local_addr()?);
        let oauth = oauth_context(&config, issuer, db, keys, &refresh_key)?;
        let state = Arc::new(AppState {
            oauth,
            jwks_cache_control: crate::http::wellknown::jwks_cache_control(&config),
            draining: Default::default(),
            sso_endpoints: Default::default(),
            scopes_supported,
            config,
        });
        sync_named_key_sources(&state, now_unix()).await;
        Ok(Self {
            listener,
            metrics_listener,
            state,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The separate metrics listener's address, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests and
    /// flushes queued bookkeeping.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let (stop_tx, stop_rx) = watch::channel(false);
        let book = {
            let state = state.clone();
            let rx = stop_rx.clone();
            tokio::spawn(async move {
                state
                    .bookkeeper
                    .run(state.db.clone(), state.config.flush_interval, rx)
                    .await;
            })
        };
        let upkeep = tokio::spawn(crate::http::metrics::upkeep(stop_rx.clone()));
        let maintenance = tokio::spawn(maintenance(state.clone(), stop_rx.clone()));
        let retention = state
            .config
            .audit_retention
            .map(|keep| tokio::spawn(audit_retention(state.clone(), keep, stop_rx.clone())));
        tracing::info!(addr = %self.listener.local_addr()?, issuer = %state.issuer, "warden listening");
        let app = crate::http::router(state.clone());
        let metrics = self
            .metrics_listener
            .map(|l| spawn_metrics(l, &state, stop_rx.clone()));
        // On the signal, readiness drops at once; connections are still
        // accepted for `shutdown_delay` (so a load balancer notices), then
        // refused while in-flight requests drain.
        let shutdown = {
            let state = state.clone();
            async move {
                shutdown.await;
                state
                    .draining
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                let delay = state.config.shutdown_delay;
                tracing::info!(?delay, "shutdown requested: readiness is now failing");
                tokio::time::sleep(delay).await;
            }
        };
        crate::connections::serve(self.listener, app, &state.config, shutdown).await;
        let _ = stop_tx.send(true);
        let _ = book.await;
        if let Some(m) = metrics {
            let _ = m.await;
        }
        maintenance.abort();
        if let Some(r) = retention {
            r.abort();
        }
        upkeep.abort();
        state.db.close().await;
        Ok(())
    }
}

/// Warns at start about secrets others can read: private key files and
/// the refresh-token key readable by group or others, a keys directory
/// others can enter, a SQLite database file readable by group or others.
fn warn_if_exposed(config: &Config) {
    for (path, mode, what) in crate::crypto::keys::exposed_files(&config.keys_dir) {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:04o}"),
            "{what}; run chmod 600 on key files and chmod 700 on the keys directory"
        );
    }
    if let Some(path) = crate::db::sqlite_path(&config.database_url) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(&path) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format_args!("{mode:04o}"),
                    "the database file is readable by other users (it holds secret hashes and the audit log); run chmod 600 on it and its -wal and -shm files"
                );
            }
        }
    }
}

/// Prunes audit events and usage counts older than `keep`: hourly, the
/// first time a minute after start, in its own task so neither requests
/// nor key reloads wait on it (`Db::prune_audit` deletes in small batches).
async fn audit_retention(state: Arc<AppState>, keep: Duration, mut stop: watch::Receiver<bool>) {
    let start = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut tick = tokio::time::interval_at(start, Duration::from_secs(3600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let cutoff = now_unix() - keep.as_secs() as i64;
        match state
            .db
            .prune_audit(cutoff, Duration::from_millis(20))
            .await
        {
            Ok(n) if n > 0 => {
                tracing::info!(rows = n, "pruned audit events and usage past the retention")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "pruning the audit log failed; retrying in an hour")
            }
        }
    }
}

/// Periodic chores: pick up keys changed on disk (every replica, every
/// `key_reload_interval`), run the automatic rotation schedule if one is
/// set, sweep throttle buckets, and prune spent refresh state hourly.
async fn maintenance(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.key_reload_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_refresh_prune = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = now_unix();
        if let Some(every) = state.config.key_rotation_interval {
            rotate_on_schedule(&state, every, now).await;
        }
        if let Err(e) = state.keys.reload(now) {
            tracing::error!(error = %e, "reloading signing keys failed; keeping the current set");
        }
        state.client_limiter.sweep();
        state.rs_limiter.sweep();
        sync_named_key_sources(&state, now).await;
        if last_refresh_prune.elapsed() >= Duration::from_secs(3600) {
            last_refresh_prune = std::time::Instant::now();
            match state.db.prune_refresh_state(now).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "pruned expired refresh-token state"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning refresh-token state failed"),
            }
        }
    }
}

/// Tells the issuer-key cache which sources live credentials name (and
/// the console's single sign-on issuer), so it keeps those and drops the
/// rest. A failed read keeps what it knew.
async fn sync_named_key_sources(state: &AppState, now: i64) {
    match state.db.named_key_sources(now).await {
        Ok((mut issuers, jwks)) => {
            if let Some(sso) = &state.config.console_sso {
                issuers.insert(sso.issuer.clone());
            }
            state.issuers.set_named(issuers, jwks);
        }
        Err(e) => tracing::warn!(error = %e, "reading the credentials' key sources failed"),
    }
}

/// One step of the automatic rotation schedule: create the next key when
/// due, and delete keys whose tokens have all expired. File work runs on
/// the blocking pool (RSA key generation takes a while).
async fn rotate_on_schedule(state: &Arc<AppState>, every: Duration, now: i64) {
    let c = &state.config;
    let (dir, alg) = (c.keys_dir.clone(), c.key_algorithm);
    let every = every.as_secs() as i64;
    let delay = c.key_publication_delay.as_secs() as i64;
    let ttl = c.access_token_ttl.as_secs() as i64;
    let reload = c.key_reload_interval.as_secs() as i64;
    let work = tokio::task::spawn_blocking(move || {
        let created = crate::crypto::keys::rotate_if_due(&dir, alg, every, delay, now)?;
        let pruned = crate::crypto::keys::prune(&dir, ttl, reload, now)?;
        Ok::<_, crate::crypto::keys::KeyError>((created, pruned))
    })
    .await;
    match work {
        Ok(Ok((created, pruned))) => {
            if let Some(m) = created {
                tracing::info!(kid = %m.kid, alg = m.alg.as_str(), activate_at = m.activate_at, "scheduled key rotation: new key published");
            }
            for kid in pruned {
                tracing::info!(kid = %kid, "pruned a retired signing key");
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "scheduled key rotation failed"),
        Err(e) => tracing::error!(error = %e, "scheduled key rotation panicked"),
    }
}
