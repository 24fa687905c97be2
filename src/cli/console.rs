//! `warden console link`: a one-time sign-in URL for the admin console, the
//! operator's way in for the first person of an org and for break-glass
//! when single sign-on is down; `links` and `revoke` list the links not
//! used yet and take one back. Audited as the local operator.
use clap::Subcommand;

use super::{CliError, connect};
use crate::config::Config;
use crate::manage::console::{create_link, pending_links, revoke_link};
use crate::now_unix;

#[derive(Subcommand, Debug)]
pub(super) enum ConsoleCmd {
    /// Print a one-time sign-in URL (usable once, within --ttl).
    Link {
        /// The organization the person signs in to.
        #[arg(long, default_value = "default")]
        org: String,
        /// A role the person holds (repeat for several).
        #[arg(long = "role", default_value = "admin")]
        roles: Vec<String>,
        /// How long the link stays usable: 1m to 24h.
        #[arg(long, default_value = "10m")]
        ttl: String,
        /// Who the link is for (an email or a name): the audit log names
        /// them `link:<user>`.
        #[arg(long, default_value = "break-glass")]
        user: String,
    },
    /// List the sign-in links not used yet.
    Links {
        /// Only this organization's.
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a sign-in link before it is used (its id, from `links`).
    Revoke { id: String },
}

pub(super) async fn run(cmd: ConsoleCmd, config: &Config) -> Result<(), CliError> {
    let (org, roles, ttl, user) = match cmd {
        ConsoleCmd::Link {
            org,
            roles,
            ttl,
            user,
        } => (org, roles, ttl, user),
        ConsoleCmd::Links { org, json } => return list(config, org.as_deref(), json).await,
        ConsoleCmd::Revoke { id } => {
            let db = connect(config, super::Access::Write).await?;
            let actor = crate::manage::Actor::operator();
            return match revoke_link(&db, None, &id, &actor, now_unix()).await {
                Err(crate::manage::ManageError::NotFound) => Err(CliError::Usage(format!(
                    "no sign-in link `{id}` is waiting to be used"
                ))),
                other => Ok(other?),
            };
        }
    };
    let ttl = humantime::parse_duration(&ttl).map_err(|_| {
        CliError::Usage(format!(
            "--ttl {ttl}: expected a duration such as 10m or 1h"
        ))
    })?;
    let db = connect(config, super::Access::Write).await?;
    let token = create_link(&db, &org, &user, &roles, ttl.as_secs() as i64, now_unix()).await?;
    // The token rides in the fragment, which browsers never send to a
    // server: no access log or proxy sees it.
    let issuer = config.issuer_for(config.listen);
    println!("{issuer}/console/login#token={token}");
    if let Err(why) = crate::app::issuer_answers(&issuer).await {
        eprintln!(
            "warning: no warden answers at {issuer} ({why}); the link works once `warden serve` runs there. A server on another address or issuer: run this with its WARDEN_ISSUER or WARDEN_LISTEN."
        );
    }
    Ok(())
}

async fn list(config: &Config, org: Option<&str>, json: bool) -> Result<(), CliError> {
    let db = connect(config, super::Access::Read).await?;
    let links = pending_links(&db, org, now_unix()).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&links).unwrap_or_default()
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = links
        .into_iter()
        .map(|l| {
            vec![
                l.id,
                l.org,
                l.subject,
                l.roles.join(","),
                super::table::or_dash(l.expires_at),
            ]
        })
        .collect();
    super::table::print_table(&["ID", "ORG", "USER", "ROLES", "EXPIRES"], &rows);
    Ok(())
}
