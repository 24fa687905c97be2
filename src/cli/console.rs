//! `warden console link`: a one-time sign-in URL for the admin console, the
//! operator's way in for the first person of an org and for break-glass
//! when single sign-on is down. Audited as the local operator.
use clap::Subcommand;

use super::{CliError, connect};
use crate::config::Config;
use crate::manage::console::create_link;
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
}

pub(super) async fn run(cmd: ConsoleCmd, config: &Config) -> Result<(), CliError> {
    let ConsoleCmd::Link {
        org,
        roles,
        ttl,
        user,
    } = cmd;
    let ttl = humantime::parse_duration(&ttl).map_err(|_| {
        CliError::Usage(format!(
            "--ttl {ttl}: expected a duration such as 10m or 1h"
        ))
    })?;
    let db = connect(config, super::Access::Write).await?;
    let token = create_link(&db, &org, &user, &roles, ttl.as_secs() as i64, now_unix()).await?;
    // The token rides in the fragment, which browsers never send to a
    // server: no access log or proxy sees it.
    println!(
        "{}/console/login#token={token}",
        config.issuer_for(config.listen)
    );
    Ok(())
}
