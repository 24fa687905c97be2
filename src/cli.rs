//! The `warden` command line: `serve`, `migrate`, and the operator's
//! break-glass commands, audited as the local operator.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::accounts::{self, Actor, ManageError, NewAccount, to_json};
use crate::config::{Config, LogFormat};
use crate::crypto::keys::{self, Alg, KeyStore};
use crate::db::{AuditEvent, Db, DbError};
use crate::domain::account::{AccountKind, Status, validate_org_slug};
use crate::now_unix;

#[derive(Parser, Debug)]
#[command(
    name = "warden",
    version,
    about = "OAuth 2.1 authorization server for service accounts"
)]
pub struct Cli {
    /// A TOML file with the same keys as the WARDEN_* variables (lowercase,
    /// without the prefix); environment variables win over it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Manage organizations.
    #[command(subcommand)]
    Orgs(OrgsCmd),
    /// Manage service accounts (break-glass; audited as the local operator).
    #[command(subcommand)]
    Accounts(AccountsCmd),
    /// Register resource servers (the APIs that accept warden's tokens).
    #[command(subcommand, name = "resource-servers")]
    ResourceServers(RsCmd),
    /// Inspect and rotate signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
}

#[derive(Subcommand, Debug)]
enum OrgsCmd {
    /// Create an organization.
    Create {
        slug: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Args, Debug)]
struct One {
    /// The account's id or client id.
    account: String,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum AccountsCmd {
    /// Create a service account; prints its secret once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long, default_value = "default")]
        org: String,
        /// Comma-separated addresses or CIDR blocks.
        #[arg(long, value_delimiter = ',')]
        allowed_ips: Vec<String>,
        /// 30d, 60d, 90d, 180d, 1y or never.
        #[arg(long, default_value = "never")]
        expires_in: String,
        #[arg(long, default_value = "")]
        description: String,
        /// credential (default) or integration.
        #[arg(long = "type", default_value = "credential")]
        kind: String,
        /// The integration an integration account represents (e.g. jira).
        #[arg(long)]
        integration: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List accounts of every org (or one).
    List {
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        include_deleted: bool,
        #[arg(long)]
        json: bool,
    },
    Show(One),
    Disable(One),
    Enable(One),
    /// Issue a new secret; the old one stops working at once.
    ResetSecret(One),
    /// Tombstone the account: it can no longer authenticate.
    Delete(One),
}

#[derive(Subcommand, Debug)]
enum RsCmd {
    /// Register a resource server; prints its secret once.
    Create {
        #[arg(long)]
        name: String,
        /// The absolute URI tokens for this server carry in `aud`.
        #[arg(long)]
        audience: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// RESOURCE_SERVER is the id, client id or audience.
    Show(OneRs),
    Disable(OneRs),
    Enable(OneRs),
    Delete(OneRs),
}

#[derive(Args, Debug)]
struct OneRs {
    resource_server: String,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// List keys and their state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a new signing key, published now and used for signing after
    /// the pre-publication delay.
    Rotate {
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// How long the key is published before it signs (longer than
        /// resource servers cache the JWKS). Default: key_publication_delay.
        #[arg(long)]
        activate_in: Option<String>,
    },
    /// Delete keys that no unexpired token can have been signed with.
    Prune,
}

/// A failed command: `Usage` (bad input, exit 2) or `Failure` (exit 1).
pub enum CliError {
    Usage(String),
    Failure(String),
}

impl From<ManageError> for CliError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Db(d) => CliError::Failure(d.to_string()),
            ManageError::Hash => CliError::Failure(e.to_string()),
            other => CliError::Usage(other.to_string()),
        }
    }
}

impl From<DbError> for CliError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(m) => CliError::Usage(m),
            other => CliError::Failure(other.to_string()),
        }
    }
}

/// Parses arguments and runs; returns the process exit code.
pub async fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    2
                } else {
                    0
                };
            }
            // clap explains over several lines; the contract is one line:
            // its first paragraph, joined.
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{}", first.join(" "));
            return 2;
        }
    };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    init_logging(&config, matches!(cli.command, Command::Serve));
    match run(cli.command, config).await {
        Ok(()) => 0,
        Err(CliError::Usage(m)) => {
            eprintln!("error: {}", m.lines().next().unwrap_or(""));
            2
        }
        Err(CliError::Failure(m)) => {
            eprintln!("error: {}", m.replace('\n', " "));
            1
        }
    }
}

fn init_logging(config: &Config, serving: bool) {
    // Commands other than `serve` print results on stdout; only warnings
    // and errors are logged for them, on stderr.
    let filter = if serving {
        config.log.clone()
    } else {
        "warn".to_owned()
    };
    // Colour only on a terminal: escape codes in a log file or journal are
    // noise, and formatting them is work on every request span.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn run(cmd: Command, config: Config) -> Result<(), CliError> {
    match cmd {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            connect(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Orgs(OrgsCmd::Create { slug, name }) => {
            let slug = validate_org_slug(&slug).map_err(|e| CliError::Usage(e.to_string()))?;
            let db = connect(&config).await?;
            let now = now_unix();
            let name = name.unwrap_or_else(|| slug.clone());
            let ev = AuditEvent::by_operator(
                &slug,
                "org.created",
                "org",
                &slug,
                now,
                json!({"name": name}),
            );
            db.create_org(&slug, &name, now, &ev).await?;
            println!("{slug}");
            Ok(())
        }
        Command::Accounts(cmd) => accounts_cmd(cmd, &connect(&config).await?).await,
        Command::ResourceServers(cmd) => {
            let issuer = config.issuer_for(config.listen);
            rs_cmd(cmd, &connect(&config).await?, &issuer).await
        }
        Command::Keys(cmd) => keys_cmd(cmd, &config),
    }
}

async fn serve(config: Config) -> Result<(), CliError> {
    let app = crate::app::Application::build(config)
        .await
        .map_err(|e| CliError::Failure(format!("{e:#}")))?;
    app.run_until(shutdown_signal())
        .await
        .map_err(|e| CliError::Failure(format!("{e:#}")))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}

async fn connect(config: &Config) -> Result<Db, CliError> {
    let db = Db::connect(&config.database_url).await.map_err(|e| {
        CliError::Failure(format!(
            "cannot open the database at {}: {e}",
            crate::app::redact_url(&config.database_url)
        ))
    })?;
    db.migrate().await?;
    Ok(db)
}

async fn accounts_cmd(cmd: AccountsCmd, db: &Db) -> Result<(), CliError> {
    let actor = Actor::operator();
    let now = now_unix();
    let (account, secret, json_out) = match cmd {
        AccountsCmd::Create {
            name,
            roles,
            org,
            allowed_ips,
            expires_in,
            description,
            kind,
            integration,
            json,
        } => {
            let kind = AccountKind::parse(&kind).ok_or_else(|| {
                CliError::Usage("--type must be credential or integration".into())
            })?;
            let req = NewAccount {
                org,
                kind,
                name,
                description,
                integration,
                roles,
                allowed_ips: allowed_ips
                    .into_iter()
                    .filter(|s| !s.trim().is_empty())
                    .collect(),
                expires_in: Some(expires_in),
                expires_at: None,
            };
            let (a, s) = accounts::create(db, req, &actor, now).await?;
            (a, s, json)
        }
        AccountsCmd::List {
            org,
            include_deleted,
            json,
        } => {
            let list = db.list_accounts(org.as_deref(), include_deleted).await?;
            if json {
                println!("{}", Value::Array(list.iter().map(to_json).collect()));
            } else {
                println!(
                    "{:<36}  {:<10}  {:<33}  {:<9}  {:<11}  NAME / ROLES",
                    "ID", "ORG", "CLIENT ID", "STATUS", "TYPE"
                );
                for a in &list {
                    let status = if a.is_deleted() {
                        "deleted"
                    } else {
                        a.status.as_str()
                    };
                    println!(
                        "{:<36}  {:<10}  {:<33}  {:<9}  {:<11}  {} [{}]",
                        a.id,
                        a.org_id,
                        a.client_id.as_deref().unwrap_or("-"),
                        status,
                        a.kind.as_str(),
                        a.name,
                        a.roles.join(",")
                    );
                }
            }
            return Ok(());
        }
        AccountsCmd::Show(o) => {
            let a = db
                .find_account(None, &o.account)
                .await?
                .ok_or_else(|| CliError::Usage("service account not found".into()))?;
            (a, None, o.json)
        }
        AccountsCmd::Disable(o) => (
            accounts::set_status(db, None, &o.account, Status::Disabled, &actor, now).await?,
            None,
            o.json,
        ),
        AccountsCmd::Enable(o) => (
            accounts::set_status(db, None, &o.account, Status::Active, &actor, now).await?,
            None,
            o.json,
        ),
        AccountsCmd::ResetSecret(o) => {
            let (a, s) = accounts::reset_secret(db, None, &o.account, &actor, now).await?;
            (a, Some(s), o.json)
        }
        AccountsCmd::Delete(o) => (
            accounts::delete(db, None, &o.account, &actor, now).await?,
            None,
            o.json,
        ),
    };
    print_object(to_json(&account), secret.as_ref(), json_out);
    Ok(())
}

async fn rs_cmd(cmd: RsCmd, db: &Db, issuer: &str) -> Result<(), CliError> {
    use crate::resource_servers as rs;
    let actor = Actor::operator();
    let now = now_unix();
    let (server, secret, json_out) = match cmd {
        RsCmd::Create {
            name,
            audience,
            json,
        } => {
            let (r, s) = rs::create(db, &name, &audience, issuer, &actor, now).await?;
            (r, Some(s), json)
        }
        RsCmd::List { json } => {
            let all = db.list_resource_servers().await?;
            if json {
                println!("{}", Value::Array(all.iter().map(rs::to_json).collect()));
            } else {
                for r in &all {
                    let status = if r.deleted_at.is_some() {
                        "deleted"
                    } else {
                        r.status.as_str()
                    };
                    println!(
                        "{}  {}  {:<8}  {}  {}",
                        r.id, r.client_id, status, r.audience, r.name
                    );
                }
            }
            return Ok(());
        }
        RsCmd::Show(o) => {
            let r = db
                .find_resource_server(&o.resource_server)
                .await?
                .ok_or_else(|| CliError::Usage("resource server not found".into()))?;
            (r, None, o.json)
        }
        RsCmd::Disable(o) => (
            rs::set_status(db, &o.resource_server, Status::Disabled, &actor, now).await?,
            None,
            o.json,
        ),
        RsCmd::Enable(o) => (
            rs::set_status(db, &o.resource_server, Status::Active, &actor, now).await?,
            None,
            o.json,
        ),
        RsCmd::Delete(o) => (
            rs::delete(db, &o.resource_server, &actor, now).await?,
            None,
            o.json,
        ),
    };
    print_object(rs::to_json(&server), secret.as_ref(), json_out);
    Ok(())
}

/// Prints an object as JSON or `key value` lines, adding the one-time
/// secret when there is one.
fn print_object(
    mut out: Value,
    secret: Option<&crate::domain::credentials::ClientSecret>,
    json_out: bool,
) {
    if let (Some(s), Some(m)) = (secret, out.as_object_mut()) {
        m.insert("client_secret".into(), s.expose().into());
    }
    if json_out {
        println!("{out}");
    } else if let Some(m) = out.as_object() {
        for (k, v) in m {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            };
            println!("{k:<14} {v}");
        }
        if secret.is_some() {
            eprintln!("note: the client secret is shown only once; store it now.");
        }
    }
}

fn keys_cmd(cmd: KeysCmd, config: &Config) -> Result<(), CliError> {
    let now = now_unix();
    let fail = |e: keys::KeyError| CliError::Failure(e.to_string());
    match cmd {
        KeysCmd::List { json } => {
            let store = KeyStore::open(&config.keys_dir, now).map_err(fail)?;
            let set = store.current();
            let rows: Vec<Value> = set
                .keys
                .iter()
                .map(|k| {
                    let state = set.state_of(k, now);
                    json!({"kid": k.meta.kid, "alg": k.meta.alg.as_str(), "state": state,
                           "created_at": accounts::rfc3339(Some(k.meta.created_at)),
                           "activate_at": accounts::rfc3339(Some(k.meta.activate_at))})
                })
                .collect();
            if json {
                println!("{}", Value::Array(rows));
            } else {
                for r in rows {
                    println!(
                        "{}  {:<6} {:<9} activates {}",
                        r["kid"].as_str().unwrap_or(""),
                        r["alg"].as_str().unwrap_or(""),
                        r["state"].as_str().unwrap_or(""),
                        r["activate_at"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        KeysCmd::Rotate { alg, activate_in } => {
            let alg = Alg::parse(&alg)
                .ok_or_else(|| CliError::Usage("--alg must be ES256, EdDSA or RS256".into()))?;
            let delay = match activate_in {
                Some(text) => humantime::parse_duration(&text).map_err(|_| {
                    CliError::Usage("--activate-in must be a duration such as 10m".into())
                })?,
                None => config.key_publication_delay,
            };
            if delay < config.key_reload_interval {
                eprintln!(
                    "warning: --activate-in is shorter than key_reload_interval ({}s); a replica may sign with the key before another replica publishes it",
                    config.key_reload_interval.as_secs()
                );
            }
            let meta =
                keys::rotate(&config.keys_dir, alg, delay.as_secs() as i64, now).map_err(fail)?;
            println!("{}", meta.kid);
            Ok(())
        }
        KeysCmd::Prune => {
            let pruned = keys::prune(
                &config.keys_dir,
                config.access_token_ttl.as_secs() as i64,
                config.key_reload_interval.as_secs() as i64,
                now,
            )
            .map_err(fail)?;
            for kid in pruned {
                println!("pruned {kid}");
            }
            Ok(())
        }
    }
}
