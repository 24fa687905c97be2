//! The `warden` command line: `serve`, `migrate`, and the operator's
//! break-glass commands, audited as the local operator.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::config::{Config, LogFormat};
use crate::crypto::keys::{self, Alg, KeyStore};
use crate::db::{Db, DbError};
use crate::domain::account::{AccountKind, Status, validate_org_slug};
use crate::manage::accounts::{self, NewAccount, to_json};
use crate::manage::{Actor, ManageError, rfc3339};
use crate::now_unix;

#[derive(Parser, Debug)]
#[command(
    name = "warden",
    version,
    about = "OAuth 2.1 authorization server for service accounts",
    after_help = "Start with `warden serve`; create the first admin with \
                  `warden accounts create --name admin --role admin --json`.\n\
                  Every command reads the configuration `warden serve` reads: \
                  --config FILE and the WARDEN_* variables (docs/configuration.md)."
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
    /// Organizations: create, list, show.
    #[command(subcommand)]
    Orgs(OrgsCmd),
    /// Service accounts (the operator's break-glass path; audited as the
    /// local operator, not bound by the admin API's rules).
    #[command(subcommand)]
    Accounts(AccountsCmd),
    /// Resource servers: the APIs that accept warden's tokens and call
    /// introspection.
    #[command(subcommand, name = "resource-servers")]
    ResourceServers(RsCmd),
    /// Roles: the built-in ones and an organization's custom roles.
    #[command(subcommand)]
    Roles(RolesCmd),
    /// Signing keys: list, rotate, prune.
    #[command(subcommand)]
    Keys(KeysCmd),
}

#[derive(Subcommand, Debug)]
enum OrgsCmd {
    /// Create an organization.
    Create {
        /// Lowercase letters, digits and '-' (what tokens carry in `org`).
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List organizations.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one organization and how many service accounts it has.
    Show {
        /// The organization's slug.
        slug: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct One {
    /// The account's id or client id.
    account: String,
    /// Print JSON instead of `key value` lines.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum AccountsCmd {
    /// Create a service account; prints its secret once.
    Create {
        /// 1 to 100 characters.
        #[arg(long)]
        name: String,
        /// A role id (repeat for several): admin, editor, viewer, … or a
        /// custom role of the org.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The organization's slug.
        #[arg(long, default_value = "default")]
        org: String,
        /// Comma-separated addresses or CIDR blocks (empty: any address).
        #[arg(long, value_delimiter = ',')]
        allowed_ips: Vec<String>,
        /// 30d, 60d, 90d, 180d, 1y or never.
        #[arg(long, default_value = "never", conflicts_with = "expires_at")]
        expires_in: String,
        /// Instead of --expires-in: an RFC 3339 time within ten years.
        #[arg(long)]
        expires_at: Option<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// credential (default) or integration.
        #[arg(long = "type", default_value = "credential")]
        kind: String,
        /// The integration an integration account represents (e.g. jira).
        #[arg(long)]
        integration: Option<String>,
        /// Print JSON (the secret included, once).
        #[arg(long)]
        json: bool,
    },
    /// List the accounts of every org, or of one.
    List {
        /// Only this organization.
        #[arg(long)]
        org: Option<String>,
        /// Include deleted accounts (tombstones).
        #[arg(long)]
        include_deleted: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one account.
    Show(One),
    /// Change name, description, roles, allowed IPs or expiry; what you do
    /// not pass is kept.
    Update {
        /// The account's id or client id.
        account: String,
        /// A new name (1 to 100 characters).
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// The new set of roles (repeat for several); replaces the old set.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Comma-separated addresses or CIDR blocks; an empty value
        /// (`--allowed-ips ""`) removes the restriction.
        #[arg(long)]
        allowed_ips: Option<String>,
        /// 30d, 60d, 90d, 180d, 1y or never.
        #[arg(long, conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// An RFC 3339 time within ten years.
        #[arg(long)]
        expires_at: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the account: no new tokens, its tokens inactive at once.
    Disable(One),
    /// Let a disabled account work again.
    Enable(One),
    /// Issue a new secret; every other secret stops working at once and
    /// refresh tokens issued before are refused. Prints it once.
    ResetSecret(One),
    /// Issue a new secret while the current one keeps working for a grace
    /// period. Prints it once.
    RotateSecret {
        /// The account's id or client id.
        account: String,
        /// How long the current secret keeps working (at most 7d).
        #[arg(long, default_value = "24h")]
        grace: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tombstone the account: it never authenticates again but stays
    /// readable. Asks first on a terminal.
    Delete {
        /// The account's id or client id.
        account: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum RsCmd {
    /// Register a resource server; prints its secret once.
    Create {
        /// 1 to 100 characters.
        #[arg(long)]
        name: String,
        /// The absolute URI tokens for this server carry in `aud` (never
        /// warden's own issuer URL).
        #[arg(long)]
        audience: String,
        /// Print JSON (the secret included, once).
        #[arg(long)]
        json: bool,
    },
    /// List resource servers.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one resource server.
    Show(OneRs),
    /// Rename a resource server (its audience never changes).
    Update {
        /// The id, client id or audience.
        resource_server: String,
        /// The new name (1 to 100 characters).
        #[arg(long)]
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret; every other one stops working at once. Prints it
    /// once.
    ResetSecret(OneRs),
    /// Issue a new secret while the current one keeps working for a grace
    /// period. Prints it once.
    RotateSecret {
        /// The id, client id or audience.
        resource_server: String,
        /// How long the current secret keeps working (at most 7d).
        #[arg(long, default_value = "24h")]
        grace: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refuse the server's introspection and revocation calls for now.
    Disable(OneRs),
    /// Let a disabled server call again.
    Enable(OneRs),
    /// Remove the server: its credentials stop working and its audience is
    /// freed; tokens for it stop being refreshed.
    Delete(OneRs),
}

#[derive(Args, Debug)]
struct OneRs {
    /// The id, client id or audience.
    resource_server: String,
    /// Print JSON instead of `key value` lines.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum RolesCmd {
    /// List the built-in roles and an organization's custom roles.
    List {
        /// The organization's slug.
        #[arg(long, default_value = "default")]
        org: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a custom role in an organization.
    Create {
        /// Lowercase letters, digits and '-'; not a built-in role id.
        id: String,
        /// A permission the role grants (repeat for several).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        /// The organization's slug. (Roles shared by every org come later.)
        #[arg(long)]
        org: Option<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// List keys and their state (signing, upcoming, retired).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a new signing key: published at once, signing after the
    /// publication delay.
    Rotate {
        /// ES256, EdDSA or RS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// How long the key is published before it signs (longer than
        /// resource servers cache the JWKS). Default: key_publication_delay.
        #[arg(long)]
        activate_in: Option<String>,
    },
    /// Delete retired keys that no unexpired token can have been signed
    /// with.
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
    let serving = matches!(cli.command, Command::Serve);
    init_logging(&config, serving);
    for (var, near) in Config::unknown_variables() {
        let hint = near
            .map(|n| format!(" (did you mean {n}?)"))
            .unwrap_or_default();
        if serving {
            tracing::warn!("{var} is not a warden setting and is ignored{hint}");
        } else {
            eprintln!("warning: {var} is not a warden setting and is ignored{hint}");
        }
    }
    match run(cli.command, config).await {
        Ok(()) => {
            if let Some(line) = USED_DATABASE.get() {
                eprintln!("{line}");
            }
            0
        }
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

/// Which database the command used, said on stderr once it succeeded (an
/// error is one line, which names the database when it is the problem).
static USED_DATABASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Whether a command may create the database (and apply migrations) or
/// only reads an existing one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Write,
    Read,
}

async fn run(cmd: Command, config: Config) -> Result<(), CliError> {
    use Access::{Read, Write};
    match cmd {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            connect(&config, Write).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Orgs(OrgsCmd::List { json }) => {
            let db = connect(&config, Read).await?;
            let orgs = db.list_orgs().await?;
            let rows: Vec<Value> = orgs
                .iter()
                .map(|(slug, name, at)| {
                    json!({"slug": slug, "name": name, "created_at": rfc3339(Some(*at))})
                })
                .collect();
            if json {
                println!("{}", Value::Array(rows));
            } else {
                println!("{:<24}  {:<21}  NAME", "SLUG", "CREATED");
                for r in rows {
                    println!(
                        "{:<24}  {:<21}  {}",
                        r["slug"].as_str().unwrap_or(""),
                        r["created_at"].as_str().unwrap_or(""),
                        r["name"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        Command::Orgs(OrgsCmd::Show { slug, json }) => {
            let db = connect(&config, Read).await?;
            let Some((slug, name, at)) = db.list_orgs().await?.into_iter().find(|o| o.0 == slug)
            else {
                return Err(no_org(&slug));
            };
            let all = db.list_accounts(Some(&slug), false).await?;
            let active = all.iter().filter(|a| a.status == Status::Active).count();
            let out = json!({"slug": slug, "name": name, "created_at": rfc3339(Some(at)),
                             "service_accounts": all.len(), "active_service_accounts": active});
            print_object(out, None, json);
            Ok(())
        }
        Command::Roles(cmd) => roles_cmd(cmd, &config).await,
        Command::Orgs(OrgsCmd::Create { slug, name }) => {
            // Bad input is refused before a database is opened (or made).
            validate_org_slug(&slug).map_err(|e| CliError::Usage(e.to_string()))?;
            let db = connect(&config, Write).await?;
            let slug = crate::manage::orgs::create(
                &db,
                &slug,
                name.as_deref(),
                &Actor::operator(),
                now_unix(),
            )
            .await?;
            println!("{slug}");
            Ok(())
        }
        Command::Accounts(cmd) => {
            let access = match cmd {
                AccountsCmd::List { .. } | AccountsCmd::Show(_) => Read,
                _ => Write,
            };
            accounts_cmd(cmd, &connect(&config, access).await?).await
        }
        Command::ResourceServers(cmd) => {
            let issuer = config.issuer_for(config.listen);
            let access = match cmd {
                RsCmd::List { .. } | RsCmd::Show(_) => Read,
                _ => Write,
            };
            rs_cmd(cmd, &connect(&config, access).await?, &issuer).await
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

/// Opens the database the configuration names (applying pending
/// migrations, as `serve` does). A command that only reads never creates a
/// SQLite file: a missing one is most likely the wrong configuration, and
/// is said so.
async fn connect(config: &Config, access: Access) -> Result<Db, CliError> {
    let shown = crate::app::redact_url(&config.database_url);
    let from = &config.database_url_source;
    if access == Access::Read
        && let Some(path) = crate::db::sqlite_path(&config.database_url)
        && !path.exists()
    {
        return Err(CliError::Usage(format!(
            "no database at {shown} (from {from}); nothing to read. Is this the configuration `warden serve` uses (--config, WARDEN_DATABASE_URL)?"
        )));
    }
    let db = Db::connect(&config.database_url).await.map_err(|e| {
        CliError::Failure(format!(
            "cannot open the database at {shown} (from {from}): {e}"
        ))
    })?;
    db.migrate().await?;
    let _ = USED_DATABASE.set(format!("database: {shown} (from {from})"));
    Ok(db)
}

fn no_org(slug: &str) -> CliError {
    CliError::Usage(format!(
        "no organization `{}` (see `warden orgs list`)",
        slug.chars()
            .filter(|c| !c.is_control())
            .take(63)
            .collect::<String>()
    ))
}

async fn roles_cmd(cmd: RolesCmd, config: &Config) -> Result<(), CliError> {
    match cmd {
        RolesCmd::List { org, json } => {
            let db = connect(config, Access::Read).await?;
            if !db.org_exists(&org).await? {
                return Err(no_org(&org));
            }
            let roles = crate::manage::roles::list(&db, &org).await?;
            if json {
                println!("{}", Value::Array(roles));
            } else {
                println!("{:<20}  {:<8}  PERMISSIONS", "ROLE", "KIND");
                for r in roles {
                    let perms: Vec<&str> = r["permissions"]
                        .as_array()
                        .map(|p| p.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let kind = if r["builtin"] == true {
                        "built-in"
                    } else {
                        "custom"
                    };
                    println!(
                        "{:<20}  {:<8}  {}",
                        r["id"].as_str().unwrap_or(""),
                        kind,
                        perms.join(" ")
                    );
                }
            }
            Ok(())
        }
        RolesCmd::Create {
            id,
            permissions,
            org,
            description,
            json,
        } => {
            let Some(org) = org else {
                return Err(CliError::Usage(
                    "--org is required: roles shared by every organization are not supported yet"
                        .into(),
                ));
            };
            let db = connect(config, Access::Write).await?;
            if !db.org_exists(&org).await? {
                return Err(no_org(&org));
            }
            let role = crate::manage::roles::create(
                &db,
                &org,
                &id,
                &description,
                &permissions,
                &Actor::operator(),
                now_unix(),
            )
            .await?;
            print_object(crate::manage::roles::to_json(&role), None, json);
            Ok(())
        }
    }
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
            expires_at,
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
                expires_in: expires_at.is_none().then_some(expires_in),
                expires_at,
            };
            let (a, s) = accounts::create(db, req, &actor, now).await?;
            (a, s, json)
        }
        AccountsCmd::List {
            org,
            include_deleted,
            json,
        } => {
            if let Some(o) = &org
                && !db.org_exists(o).await?
            {
                return Err(no_org(o));
            }
            let list = db.list_accounts(org.as_deref(), include_deleted).await?;
            if json {
                println!("{}", Value::Array(list.iter().map(to_json).collect()));
            } else {
                println!(
                    "{:<36}  {:<10}  {:<33}  {:<9}  {:<11}  {:<20}  NAME / ROLES",
                    "ID", "ORG", "CLIENT ID", "STATUS", "TYPE", "LAST USED"
                );
                for a in &list {
                    let status = if a.is_deleted() {
                        "deleted"
                    } else {
                        a.status.as_str()
                    };
                    let last = rfc3339(a.last_used_at);
                    println!(
                        "{:<36}  {:<10}  {:<33}  {:<9}  {:<11}  {:<20}  {} [{}]",
                        a.id,
                        a.org_id,
                        a.client_id.as_deref().unwrap_or("-"),
                        status,
                        a.kind.as_str(),
                        last.as_str().unwrap_or("never"),
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
        AccountsCmd::RotateSecret {
            account,
            grace,
            json,
        } => {
            let grace = parse_grace(&grace)?;
            let (a, s) = accounts::rotate_secret(db, None, &account, grace, &actor, now).await?;
            (a, Some(s), json)
        }
        AccountsCmd::Update {
            account,
            name,
            description,
            roles,
            allowed_ips,
            expires_in,
            expires_at,
            json,
        } => {
            let patch = accounts::AccountPatch {
                name,
                description,
                roles: (!roles.is_empty()).then_some(roles),
                allowed_ips: allowed_ips.map(|l| {
                    l.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                }),
                expires_in,
                expires_at,
                if_version: None,
            };
            (
                accounts::update(db, None, &account, patch, &actor, now).await?,
                None,
                json,
            )
        }
        AccountsCmd::Delete { account, yes, json } => {
            let a = db
                .find_account(None, &account)
                .await?
                .ok_or_else(|| CliError::Usage("service account not found".into()))?;
            if !yes {
                let question = format!(
                    "Delete service account `{}` ({}) in org `{}`? It can never authenticate again. [y/N] ",
                    a.name,
                    a.client_id.as_deref().unwrap_or(&a.id),
                    a.org_id
                );
                match confirm(&question) {
                    Some(true) => {}
                    Some(false) => return Err(CliError::Usage("not deleted".into())),
                    None => {
                        return Err(CliError::Usage(
                            "not deleted: pass --yes to delete without a terminal to confirm on"
                                .into(),
                        ));
                    }
                }
            }
            (
                accounts::delete(db, None, &account, &actor, now).await?,
                None,
                json,
            )
        }
    };
    print_object(to_json(&account), secret.as_ref(), json_out);
    Ok(())
}

async fn rs_cmd(cmd: RsCmd, db: &Db, issuer: &str) -> Result<(), CliError> {
    use crate::manage::resource_servers as rs;
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
        RsCmd::Update {
            resource_server,
            name,
            json,
        } => (
            rs::rename(db, &resource_server, &name, &actor, now).await?,
            None,
            json,
        ),
        RsCmd::ResetSecret(o) => {
            let (r, s) = rs::reset_secret(db, &o.resource_server, &actor, now).await?;
            (r, Some(s), o.json)
        }
        RsCmd::RotateSecret {
            resource_server,
            grace,
            json,
        } => {
            let grace = parse_grace(&grace)?;
            let (r, s) = rs::rotate_secret(db, &resource_server, grace, &actor, now).await?;
            (r, Some(s), json)
        }
    };
    print_object(rs::to_json(&server), secret.as_ref(), json_out);
    Ok(())
}

/// `--grace`: a duration such as `24h`, in seconds.
fn parse_grace(text: &str) -> Result<i64, CliError> {
    humantime::parse_duration(text)
        .map(|d| d.as_secs() as i64)
        .map_err(|_| CliError::Usage("--grace must be a duration such as 24h".into()))
}

/// Asks on a terminal; anything but `y`/`yes` is no. `None` without a
/// terminal (a script): asking is impossible, the caller must pass `--yes`.
fn confirm(question: &str) -> Option<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return None;
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    Some(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
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
                           "created_at": rfc3339(Some(k.meta.created_at)),
                           "activate_at": rfc3339(Some(k.meta.activate_at))})
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
            eprintln!(
                "key {} ({}) created: in every replica's JWKS within {} (the reload interval), signing from {} (in {})",
                meta.kid,
                meta.alg.as_str(),
                humantime::format_duration(config.key_reload_interval),
                rfc3339(Some(meta.activate_at)).as_str().unwrap_or("-"),
                humantime::format_duration(delay)
            );
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
            if pruned.is_empty() {
                eprintln!(
                    "nothing to prune: every key is signing, upcoming, or may have signed a token that has not expired yet"
                );
            }
            for kid in pruned {
                println!("pruned {kid}");
            }
            Ok(())
        }
    }
}
