//! The `warden` command line: `serve`, `migrate`, and the operator's
//! break-glass commands, audited as the local operator. This file parses,
//! opens the database and reports; each command group has its own file.
mod accounts;
mod console;
mod credentials;
mod keys;
mod orgs;
mod resource_servers;
mod roles;
mod table;

use table::print_object;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};
use crate::db::{Db, DbError};
use crate::manage::ManageError;

use accounts::AccountsCmd;
use keys::KeysCmd;
use orgs::OrgsCmd;
use resource_servers::RsCmd;
use roles::RolesCmd;

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

/// What `serve --help` says after its flags: the settings a first run
/// needs (all of them: docs/configuration.md).
const SERVE_SETTINGS: &str = "\
Settings that matter first (environment, or the same keys in --config FILE):
  WARDEN_LISTEN         address and port to listen on      [default: 127.0.0.1:8080]
  WARDEN_ISSUER         the URL clients reach warden at    [default: http:// + WARDEN_LISTEN]
  WARDEN_DATABASE_URL   sqlite://FILE or postgres://...    [default: sqlite://warden.db]
  WARDEN_KEYS_DIR       signing keys directory             [default: keys]
  WARDEN_DEFAULT_AUDIENCE  aud of tokens asked for without resource
Every setting: docs/configuration.md. A misspelt WARDEN_ variable stops serve.";

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (applies pending migrations first).
    #[command(after_long_help = SERVE_SETTINGS, after_help = SERVE_SETTINGS)]
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
    /// Roles: built-in, global (the operator's) and organizations' own.
    #[command(subcommand)]
    Roles(RolesCmd),
    /// Signing keys: list, rotate, prune.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The admin console: one-time sign-in links.
    #[command(subcommand)]
    Console(console::ConsoleCmd),
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
            ManageError::Hash | ManageError::Busy => CliError::Failure(e.to_string()),
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
        Err(e) => return usage_error(&e),
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
    if let Err(e) = check_unknown_variables(serving) {
        eprintln!("error: {e}");
        return 2;
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

/// Prints help or the version (exit 0), or a usage error in one line
/// (exit 2): clap explains over several lines, the contract is one.
fn usage_error(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            2
        }
        _ => {
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{}", first.join(" "));
            2
        }
    }
}

/// A `WARDEN_*` variable that is not a setting. One close to a setting
/// is a typo, and `serve` refuses to start on it: a misspelt
/// `WARDEN_DATABSE_URL` would otherwise run on a fresh SQLite file and the
/// operator's data would look lost. Other names (a wrapper's own
/// variables) are only a warning, and every other command only warns.
fn check_unknown_variables(serving: bool) -> Result<(), String> {
    for (var, near) in Config::unknown_variables() {
        match near {
            Some(n) if serving => {
                return Err(format!(
                    "{var} is not a warden setting: did you mean {n}? (fix the name, or unset it)"
                ));
            }
            Some(n) => eprintln!(
                "warning: {var} is not a warden setting and is ignored (did you mean {n}?)"
            ),
            None if serving => tracing::warn!("{var} is not a warden setting and is ignored"),
            None => eprintln!("warning: {var} is not a warden setting and is ignored"),
        }
    }
    Ok(())
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
pub(super) enum Access {
    Write,
    Read,
}

async fn run(cmd: Command, config: Config) -> Result<(), CliError> {
    use Access::{Read, Write};
    match cmd {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            // Here a catalog that cannot be applied is an error (every
            // other command only warns, see `connect`).
            let db = connect(&config, Write).await?;
            crate::app::apply_role_catalog(&db, &config)
                .await
                .map_err(|e| CliError::Failure(format!("{e:#}")))?;
            println!("migrations applied");
            Ok(())
        }
        Command::Orgs(cmd) => orgs::run(cmd, &config).await,
        Command::Roles(cmd) => roles::run(cmd, &config).await,
        Command::Accounts(cmd) => {
            let access = match &cmd {
                AccountsCmd::List { .. } | AccountsCmd::Show(_) => Read,
                AccountsCmd::Credentials(c) if c.reads_only() => Read,
                _ => Write,
            };
            let federation = accounts::Federation {
                allow_http: config.federation_allow_http,
                own_issuer: config.issuer_for(config.listen),
            };
            accounts::run(cmd, &connect(&config, access).await?, &federation).await
        }
        Command::ResourceServers(cmd) => {
            let issuer = config.issuer_for(config.listen);
            let access = match cmd {
                RsCmd::List { .. } | RsCmd::Show { .. } => Read,
                _ => Write,
            };
            resource_servers::run(cmd, &connect(&config, access).await?, &issuer).await
        }
        Command::Keys(cmd) => keys::run(cmd, &config),
        Command::Console(cmd) => console::run(cmd, &config).await,
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
pub(super) async fn connect(config: &Config, access: Access) -> Result<Db, CliError> {
    let shown = crate::config::redact_url(&config.database_url);
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
    // A command that writes sees the roles `serve` would (a second
    // application writes nothing). A catalog that cannot be applied does
    // not stop it: the break-glass commands (disable, delete) must work
    // whatever the file says; `migrate` and `serve` refuse it.
    if access == Access::Write
        && let Err(e) = crate::app::apply_role_catalog(&db, config).await
    {
        eprintln!("warning: {e:#}; going on without it (`warden migrate` applies it)");
    }
    let _ = USED_DATABASE.set(format!(
        "database: {shown} (from {from}); issuer: {} (from {})",
        config.issuer_for(config.listen),
        config.issuer_source
    ));
    Ok(db)
}

pub(super) fn no_org(slug: &str) -> CliError {
    CliError::Usage(format!(
        "no organization `{}` (see `warden orgs list`)",
        slug.chars()
            .filter(|c| !c.is_control())
            .take(63)
            .collect::<String>()
    ))
}

/// `--grace`: a duration such as `24h`, in seconds.
pub(super) fn parse_grace(text: &str) -> Result<i64, CliError> {
    humantime::parse_duration(text)
        .map(|d| d.as_secs() as i64)
        .map_err(|_| CliError::Usage("--grace must be a duration such as 24h".into()))
}

/// Asks on a terminal; anything but `y`/`yes` is no. `None` without a
/// terminal (a script): there is nobody to ask.
pub(super) fn confirm(question: &str) -> Option<bool> {
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
