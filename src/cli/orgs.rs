//! `warden orgs …`
use clap::Subcommand;
use serde_json::json;

use super::{Access, CliError, connect, no_org, print_object};
use crate::config::Config;
use crate::domain::account::Status;
use crate::domain::text::validate_org_slug;
use crate::manage::Actor;
use crate::manage::orgs::{self, OrgView};
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
    /// Disable an organization: every account in it acts as disabled.
    Disable {
        /// The organization's slug.
        slug: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rename an organization or set its allowlist (on top of each
    /// account's; "" removes it).
    Update {
        /// The organization's slug.
        slug: String,
        /// A new display name.
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated addresses or CIDR blocks; "" removes the allowlist
        #[arg(long, value_name = "CIDRS")]
        allowed_ips: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enable a disabled organization again.
    Enable {
        /// The organization's slug.
        slug: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(cmd: OrgsCmd, config: &Config) -> Result<(), CliError> {
    let disabling = matches!(cmd, OrgsCmd::Disable { .. });
    match cmd {
        OrgsCmd::List { json } => {
            let db = connect(config, Access::Read).await?;
            list(&db.list_orgs().await?, json);
            Ok(())
        }
        OrgsCmd::Show { slug, json } => {
            let db = connect(config, Access::Read).await?;
            let org = db.find_org(&slug).await?.ok_or_else(|| no_org(&slug))?;
            let all = db.list_accounts(Some(&slug), false).await?;
            let active = all.iter().filter(|a| a.status == Status::Active).count();
            let mut out = serde_json::to_value(OrgView::from(&org)).unwrap_or_default();
            out["service_accounts"] = json!(all.len());
            out["active_service_accounts"] = json!(active);
            print_object(out, None, json);
            Ok(())
        }
        OrgsCmd::Disable { slug, json } | OrgsCmd::Enable { slug, json } => {
            let status = [Status::Active, Status::Disabled][usize::from(disabling)];
            let db = connect(config, Access::Write).await?;
            db.find_org(&slug).await?.ok_or_else(|| no_org(&slug))?;
            let org = orgs::set_status(&db, &slug, status, &Actor::operator(), now_unix()).await?;
            if json {
                print_object(
                    serde_json::to_value(OrgView::from(&org)).unwrap_or_default(),
                    None,
                    json,
                );
            } else {
                let verb = if disabling { "disabled" } else { "enabled" };
                println!("{verb} organization {}", org.slug);
            }
            Ok(())
        }
        OrgsCmd::Update {
            slug,
            name,
            allowed_ips,
            json,
        } => update(config, &slug, name, allowed_ips, json).await,
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

fn list(orgs: &[crate::db::orgs::Org], json: bool) {
    let views: Vec<OrgView> = orgs.iter().map(OrgView::from).collect();
    if json {
        println!("{}", serde_json::to_value(&views).unwrap_or_default());
        return;
    }
    let rows: Vec<Vec<String>> = views
        .into_iter()
        .map(|o| {
            vec![
                o.slug,
                o.status.to_string(),
                super::table::or_dash(o.created_at),
                o.name,
            ]
        })
        .collect();
    super::table::print_table(&["SLUG", "STATUS", "CREATED", "NAME"], &rows);
}

/// `orgs update`: a new name, a new allowlist ("" removes it).
async fn update(
    config: &Config,
    slug: &str,
    name: Option<String>,
    allowed_ips: Option<String>,
    json: bool,
) -> Result<(), CliError> {
    let db = connect(config, Access::Write).await?;
    db.find_org(slug).await?.ok_or_else(|| no_org(slug))?;
    let ips: Option<Vec<String>> = allowed_ips.map(|l| {
        l.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let (actor, now) = (Actor::operator(), now_unix());
    let org = orgs::update(
        &db,
        slug,
        name.as_deref(),
        ips.as_deref(),
        None,
        &actor,
        now,
    )
    .await?;
    print_object(
        serde_json::to_value(OrgView::from(&org)).unwrap_or_default(),
        None,
        json,
    );
    Ok(())
}
