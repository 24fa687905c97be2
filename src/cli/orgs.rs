//! `warden orgs …`
use clap::Subcommand;
use serde_json::{Value, json};

use super::{Access, CliError, connect, no_org, print_object};
use crate::config::Config;
use crate::domain::account::Status;
use crate::domain::text::validate_org_slug;
use crate::manage::{Actor, rfc3339};
use crate::now_unix;

#[derive(Subcommand, Debug)]
pub(super) enum OrgsCmd {
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

pub(super) async fn run(cmd: OrgsCmd, config: &Config) -> Result<(), CliError> {
    match cmd {
        OrgsCmd::List { json } => {
            let db = connect(config, Access::Read).await?;
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
        OrgsCmd::Show { slug, json } => {
            let db = connect(config, Access::Read).await?;
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
        OrgsCmd::Create { slug, name } => {
            // Bad input is refused before a database is opened (or made).
            validate_org_slug(&slug).map_err(|e| CliError::Usage(e.to_string()))?;
            let db = connect(config, Access::Write).await?;
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
    }
}
