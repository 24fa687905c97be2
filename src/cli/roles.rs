//! `warden roles …`: without `--org`, create, show, update and delete act
//! on global roles (visible in every org); `list` shows an org's roles
//! (the default org's without `--org`), or the global ones with `--global`.
use clap::{Args, Subcommand};

use super::{Access, CliError, connect, no_org, print_object};
use crate::config::Config;
use crate::db::Db;
use crate::manage::roles::{self, RoleUpdate, RoleView};
use crate::manage::{Actor, ManageError};
use crate::now_unix;

#[derive(Subcommand, Debug)]
pub(super) enum RolesCmd {
    /// List the roles usable in an organization: built-in, global, its own.
    List {
        /// The organization's slug.
        #[arg(long, default_value = "default", conflicts_with = "global")]
        org: String,
        /// List only the global roles.
        #[arg(long)]
        global: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a role: an organization's with --org, else a global one.
    Create {
        /// Lowercase letters, digits and '-'; not a built-in role id.
        id: String,
        /// A permission the role grants (repeat for several).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        #[command(flatten)]
        scope: RoleScope,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one role.
    Show(OneRole),
    /// Change a stored role; every account holding it follows at its next
    /// request.
    Update {
        id: String,
        #[command(flatten)]
        scope: RoleScope,
        /// The new description.
        #[arg(long)]
        description: Option<String>,
        /// Grant one more permission (repeatable).
        #[arg(long = "add-permission", value_name = "P")]
        add: Vec<String>,
        /// Stop granting a permission (repeatable).
        #[arg(long = "remove-permission", value_name = "P")]
        remove: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a stored role no live service account holds.
    Delete(OneRole),
}

#[derive(Args, Debug)]
pub(super) struct RoleScope {
    /// The organization's slug; without it, the global role.
    #[arg(long)]
    org: Option<String>,
}

#[derive(Args, Debug)]
pub(super) struct OneRole {
    id: String,
    #[command(flatten)]
    scope: RoleScope,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A database for `access`, with `--org` checked to exist.
async fn open(config: &Config, access: Access, org: Option<&str>) -> Result<Db, CliError> {
    let db = connect(config, access).await?;
    if let Some(org) = org
        && !db.org_exists(org).await?
    {
        return Err(no_org(org));
    }
    Ok(db)
}

fn not_found(e: ManageError, id: &str) -> CliError {
    match e {
        ManageError::RoleNotFound => CliError::Usage(format!("no role `{id}`")),
        other => other.into(),
    }
}

fn print_role(view: RoleView, json: bool) {
    print_object(serde_json::to_value(view).unwrap_or_default(), None, json);
}

pub(super) async fn run(cmd: RolesCmd, config: &Config) -> Result<(), CliError> {
    let (operator, now) = (Actor::operator(), now_unix());
    match cmd {
        RolesCmd::List { org, global, json } => {
            let org = (!global).then_some(org);
            let db = open(config, Access::Read, org.as_deref()).await?;
            let list = roles::list(&db, org.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_value(&list).unwrap_or_default());
            } else {
                let rows: Vec<Vec<String>> = list
                    .into_iter()
                    .map(|r| {
                        let kind = match (r.builtin, r.global) {
                            (true, _) => "built-in",
                            (_, true) => "global",
                            _ => "custom",
                        };
                        vec![r.id, kind.to_owned(), r.permissions.join(" ")]
                    })
                    .collect();
                super::table::print_table(&["ROLE", "KIND", "PERMISSIONS"], &rows);
            }
            Ok(())
        }
        RolesCmd::Create {
            id,
            permissions,
            scope,
            description,
            json,
        } => {
            let org = scope.org.as_deref();
            let db = open(config, Access::Write, org).await?;
            let role =
                roles::create(&db, org, &id, &description, &permissions, &operator, now).await?;
            print_role(RoleView::from(&role), json);
            Ok(())
        }
        RolesCmd::Show(one) => {
            let org = one.scope.org.as_deref();
            let db = open(config, Access::Read, org).await?;
            let view = roles::show(&db, org, &one.id)
                .await
                .map_err(|e| not_found(e, &one.id))?;
            print_role(view, one.json);
            Ok(())
        }
        RolesCmd::Update {
            id,
            scope,
            description,
            add,
            remove,
            json,
        } => {
            let org = scope.org.as_deref();
            let db = open(config, Access::Write, org).await?;
            let permissions = if add.is_empty() && remove.is_empty() {
                None
            } else {
                let current = roles::show(&db, org, &id)
                    .await
                    .map_err(|e| not_found(e, &id))?
                    .permissions;
                if let Some(p) = remove.iter().find(|p| !current.contains(p)) {
                    return Err(CliError::Usage(format!("`{id}` does not grant `{p}`")));
                }
                let mut next: Vec<String> = current
                    .into_iter()
                    .filter(|p| !remove.contains(p))
                    .collect();
                next.extend(add);
                Some(next)
            };
            let change = RoleUpdate {
                description,
                permissions,
            };
            let role = roles::update(&db, org, &id, change, &operator, now)
                .await
                .map_err(|e| not_found(e, &id))?;
            print_role(RoleView::from(&role), json);
            Ok(())
        }
        RolesCmd::Delete(one) => {
            let org = one.scope.org.as_deref();
            let db = open(config, Access::Write, org).await?;
            let role = roles::delete(&db, org, &one.id, &operator, now)
                .await
                .map_err(|e| not_found(e, &one.id))?;
            if one.json {
                println!("{}", serde_json::json!({"id": role.id, "deleted": true}));
            } else {
                println!("deleted role {}", role.id);
            }
            Ok(())
        }
    }
}
