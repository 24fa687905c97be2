//! `warden roles …`
use clap::Subcommand;

use super::{Access, CliError, connect, no_org, print_object};
use crate::config::Config;
use crate::manage::Actor;
use crate::now_unix;

#[derive(Subcommand, Debug)]
pub(super) enum RolesCmd {
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

pub(super) async fn run(cmd: RolesCmd, config: &Config) -> Result<(), CliError> {
    match cmd {
        RolesCmd::List { org, json } => {
            let db = connect(config, Access::Read).await?;
            if !db.org_exists(&org).await? {
                return Err(no_org(&org));
            }
            let roles = crate::manage::roles::list(&db, &org).await?;
            if json {
                println!("{}", serde_json::to_value(&roles).unwrap_or_default());
            } else {
                println!("{:<20}  {:<8}  PERMISSIONS", "ROLE", "KIND");
                for r in roles {
                    let kind = if r.builtin { "built-in" } else { "custom" };
                    println!("{:<20}  {:<8}  {}", r.id, kind, r.permissions.join(" "));
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
            print_object(
                serde_json::to_value(crate::manage::roles::RoleView::from(&role))
                    .unwrap_or_default(),
                None,
                json,
            );
            Ok(())
        }
    }
}
