//! `warden resource-servers …`
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{CliError, parse_grace, print_object};
use crate::db::Db;
use crate::domain::account::Status;
use crate::domain::roles::ApiPermission;
use crate::manage::Actor;
use crate::now_unix;

#[derive(Subcommand, Debug)]
pub(super) enum RsCmd {
    /// Register a resource server; prints its secret once. Without
    /// --permission its tokens carry every permission the account holds.
    Create {
        /// 1 to 100 characters.
        #[arg(long)]
        name: String,
        /// The absolute URI tokens for this server carry in `aud` (never
        /// warden's own issuer URL).
        #[arg(long)]
        audience: String,
        /// A permission its tokens may carry, with an optional description (repeatable)
        #[arg(long = "permission", value_name = "NAME[=DESC]")]
        permissions: Vec<String>,
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
    /// Show one resource server, or with --prm the RFC 9728 document it
    /// should serve at /.well-known/oauth-protected-resource.
    Show {
        /// The id, client id or audience.
        resource_server: String,
        /// Print its protected resource metadata (JSON) instead.
        #[arg(long)]
        prm: bool,
        /// Print JSON instead of `key value` lines.
        #[arg(long)]
        json: bool,
    },
    /// Rename a resource server or change the permissions it declares (its
    /// audience never changes).
    Update {
        /// The id, client id or audience.
        resource_server: String,
        /// The new name (1 to 100 characters).
        #[arg(long)]
        name: Option<String>,
        /// Declare a permission, or redescribe one (repeatable)
        #[arg(long = "add-permission", value_name = "NAME[=DESC]")]
        add: Vec<String>,
        /// Stop declaring a permission (repeatable)
        #[arg(long = "remove-permission", value_name = "NAME")]
        remove: Vec<String>,
        /// Replace its public keys (`private_key_jwt` at introspection and
        /// revocation) with a JWK Set file (`-`: standard input;
        /// `{"keys": []}` removes them).
        #[arg(long, value_name = "FILE")]
        jwks: Option<String>,
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
pub(super) struct OneRs {
    /// The id, client id or audience.
    resource_server: String,
    /// Print JSON instead of `key value` lines.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(cmd: RsCmd, db: &Db, issuer: &str) -> Result<(), CliError> {
    use crate::manage::resource_servers as rs;
    let actor = Actor::operator();
    let now = now_unix();
    let disabling = matches!(cmd, RsCmd::Disable(_));
    // A state change says so in one line (`--json` prints the server).
    let verb = match &cmd {
        RsCmd::Disable(_) => Some("disabled"),
        RsCmd::Enable(_) => Some("enabled"),
        RsCmd::Delete(_) => Some("deleted"),
        _ => None,
    };
    let (server, secret, json_out) = match cmd {
        RsCmd::Create {
            name,
            audience,
            permissions,
            json,
        } => {
            let declared = permissions.iter().map(|p| parse_permission(p)).collect();
            let made = rs::create(db, &name, &audience, declared, issuer, &actor, now).await?;
            (made.0, Some(made.1), json)
        }
        RsCmd::List { json } => return list(db, json).await,
        RsCmd::Show {
            resource_server,
            prm,
            json,
        } => {
            let r = db.find_resource_server(&resource_server).await?;
            let r = r.ok_or_else(|| CliError::Usage("resource server not found".into()))?;
            if prm {
                if r.deleted_at.is_some() {
                    return Err(CliError::Usage("the resource server is deleted".into()));
                }
                let doc = serde_json::to_string_pretty(&r.protected_resource_metadata(issuer))
                    .unwrap_or_default();
                println!("{doc}");
                return Ok(());
            }
            (r, None, json)
        }
        RsCmd::Disable(o) | RsCmd::Enable(o) => {
            let status = [Status::Active, Status::Disabled][usize::from(disabling)];
            let r = rs::set_status(db, &o.resource_server, status, &actor, now).await?;
            (r, None, o.json)
        }
        RsCmd::Delete(o) => {
            let r = rs::delete(db, &o.resource_server, &actor, now).await?;
            (r, None, o.json)
        }
        RsCmd::Update {
            resource_server,
            name,
            add,
            remove,
            jwks,
            json,
        } => (
            update(db, &resource_server, name, &add, &remove, jwks.as_deref()).await?,
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
    match verb {
        Some(verb) if !json_out => println!(
            "{verb} resource server {} ({}, {})",
            server.name, server.client_id, server.audience
        ),
        _ => print_object(rs::to_json(&server), secret.as_ref(), json_out),
    }
    Ok(())
}

async fn list(db: &Db, json: bool) -> Result<(), CliError> {
    let all = db.list_resource_servers().await?;
    if json {
        let items = all.iter().map(crate::manage::resource_servers::to_json);
        println!("{}", Value::Array(items.collect()));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|r| {
            let status = if r.deleted_at.is_some() {
                "deleted"
            } else {
                r.status.as_str()
            };
            vec![
                r.id.clone(),
                r.client_id.clone(),
                status.to_owned(),
                r.audience.clone(),
                r.permissions
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                r.name.clone(),
            ]
        })
        .collect();
    super::table::print_table(
        &[
            "ID",
            "CLIENT ID",
            "STATUS",
            "AUDIENCE",
            "PERMISSIONS",
            "NAME",
        ],
        &rows,
    );
    Ok(())
}

/// `NAME` or `NAME=DESCRIPTION`.
fn parse_permission(s: &str) -> ApiPermission {
    let (name, description) = s.split_once('=').unwrap_or((s, ""));
    ApiPermission {
        name: name.trim().to_owned(),
        description: description.trim().to_owned(),
    }
}

/// `resource-servers update`: a new name, permissions added and removed.
async fn update(
    db: &Db,
    key: &str,
    name: Option<String>,
    add: &[String],
    remove: &[String],
    jwks: Option<&str>,
) -> Result<crate::domain::resource_server::ResourceServer, CliError> {
    use crate::manage::resource_servers as rs;
    let (actor, now) = (Actor::operator(), now_unix());
    let mut r = None;
    if let Some(name) = name {
        r = Some(rs::rename(db, key, &name, &actor, now).await?);
    }
    if !add.is_empty() || !remove.is_empty() {
        let add = add.iter().map(|p| parse_permission(p)).collect();
        r = Some(rs::change_permissions(db, key, add, remove, &actor, now).await?);
    }
    if let Some(path) = jwks {
        let text = if path == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(path)
        }
        .map_err(|e| CliError::Usage(format!("--jwks {path}: {e}")))?;
        let set: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::Usage(format!("--jwks {path}: not JSON: {e}")))?;
        r = Some(crate::manage::rs_keys::set_keys(db, key, &set, &actor, now).await?);
    }
    r.ok_or_else(|| {
        CliError::Usage(
            "nothing to change: pass --name, --add-permission, --remove-permission or --jwks"
                .into(),
        )
    })
}
