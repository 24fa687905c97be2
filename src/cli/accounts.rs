//! `warden accounts …`
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{CliError, confirm, no_org, parse_grace, print_object};
use crate::db::Db;
use crate::domain::account::{AccountKind, ServiceAccount, Status};
use crate::domain::credentials::ClientSecret;
use crate::manage::accounts::{self, NewAccount, to_json};
use crate::manage::{Actor, Scope, rfc3339};
use crate::now_unix;

#[derive(Args, Debug)]
pub(super) struct One {
    /// The account's id or client id.
    account: String,
    /// Print JSON instead of `key value` lines.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub(super) struct CreateArgs {
    /// 1 to 100 characters.
    #[arg(long)]
    name: String,
    /// A role id (repeat for several): admin, viewer, a global role (your
    /// catalog's) or a custom role of the org; see `warden roles list`.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// The organization's slug.
    #[arg(long, default_value = "default")]
    org: String,
    /// Comma-separated addresses or CIDR blocks (empty: any address).
    #[arg(long, value_delimiter = ',')]
    allowed_ips: Vec<String>,
    /// Comma-separated APIs (audiences) it may get tokens for
    #[arg(long, value_delimiter = ',', value_name = "URIS")]
    allowed_resources: Vec<String>,
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
    /// No secret: the account authenticates only with keys added to it.
    #[arg(long)]
    no_secret: bool,
    /// Print JSON (the secret included, once).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub(super) struct UpdateArgs {
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
    /// Comma-separated addresses or CIDR blocks; "" removes the restriction
    #[arg(long, value_name = "CIDRS")]
    allowed_ips: Option<String>,
    /// Comma-separated APIs (audiences) it may get tokens for; "" for all
    #[arg(long, value_name = "URIS")]
    allowed_resources: Option<String>,
    /// 30d, 60d, 90d, 180d, 1y or never.
    #[arg(long, conflicts_with = "expires_at")]
    expires_in: Option<String>,
    /// An RFC 3339 time within ten years.
    #[arg(long)]
    expires_at: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub(super) enum AccountsCmd {
    /// Create a service account; prints its secret once.
    Create(CreateArgs),
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
    Update(UpdateArgs),
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
    /// An account's credentials: list them, add or remove a public key.
    #[command(subcommand)]
    Credentials(super::credentials::CredentialsCmd),
    /// Tombstone the account: it never authenticates again but stays
    /// readable. Asks first on a terminal (not from a script).
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

/// What federated credentials may trust: plain-http issuers only with
/// `WARDEN_FEDERATION_ALLOW_HTTP`, and never this warden's own issuer.
pub(super) struct Federation {
    pub allow_http: bool,
    pub own_issuer: String,
}

pub(super) async fn run(
    cmd: AccountsCmd,
    db: &Db,
    federation: &Federation,
) -> Result<(), CliError> {
    let scope = Scope::operator(db);
    // A state change says so in one line (`--json` prints the account).
    let verb = match &cmd {
        AccountsCmd::Disable(_) => Some("disabled"),
        AccountsCmd::Enable(_) => Some("enabled"),
        AccountsCmd::Delete { .. } => Some("deleted"),
        _ => None,
    };
    let (account, secret, json_out) = match cmd {
        AccountsCmd::List {
            org,
            include_deleted,
            json,
        } => return list(db, org.as_deref(), include_deleted, json).await,
        AccountsCmd::Credentials(cmd) => {
            return super::credentials::run(cmd, db, federation).await;
        }
        AccountsCmd::Create(args) => {
            let json = args.json;
            let (a, s) = create(db, new_account(args)?).await?;
            (a, s, json)
        }
        AccountsCmd::Show(o) => (find(db, &o.account).await?, None, o.json),
        AccountsCmd::Disable(o) => (
            accounts::set_status(&scope, &o.account, Status::Disabled).await?,
            None,
            o.json,
        ),
        AccountsCmd::Enable(o) => (
            accounts::set_status(&scope, &o.account, Status::Active).await?,
            None,
            o.json,
        ),
        AccountsCmd::ResetSecret(o) => {
            let (a, s) = accounts::reset_secret(&scope, &o.account).await?;
            (a, Some(s), o.json)
        }
        AccountsCmd::RotateSecret {
            account,
            grace,
            json,
        } => {
            let grace = parse_grace(&grace)?;
            let (a, s) = accounts::rotate_secret(&scope, &account, grace).await?;
            (a, Some(s), json)
        }
        AccountsCmd::Update(args) => {
            let json = args.json;
            let (account, patch) = patch(args);
            (accounts::update(&scope, &account, patch).await?, None, json)
        }
        AccountsCmd::Delete { account, yes, json } => {
            (delete(&scope, &account, yes).await?, None, json)
        }
    };
    match verb {
        Some(verb) if !json_out => println!(
            "{verb} service account {} ({})",
            account.name,
            account.client_id.as_deref().unwrap_or(&account.id)
        ),
        _ => print_object(to_json(&account), secret.as_ref(), json_out),
    }
    Ok(())
}

async fn find(db: &Db, key: &str) -> Result<ServiceAccount, CliError> {
    db.find_account(None, key)
        .await?
        .ok_or_else(|| CliError::Usage("service account not found".into()))
}

async fn create(
    db: &Db,
    req: NewAccount,
) -> Result<(ServiceAccount, Option<ClientSecret>), CliError> {
    Ok(accounts::create(db, req, &Actor::operator(), now_unix()).await?)
}

/// The request `accounts create` makes.
fn new_account(args: CreateArgs) -> Result<NewAccount, CliError> {
    let CreateArgs {
        name,
        roles,
        org,
        allowed_ips,
        allowed_resources,
        expires_in,
        expires_at,
        description,
        kind,
        integration,
        no_secret,
        json: _,
    } = args;
    let kind = AccountKind::parse(&kind)
        .ok_or_else(|| CliError::Usage("--type must be credential or integration".into()))?;
    Ok(NewAccount {
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
        allowed_resources: allowed_resources
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .collect(),
        with_secret: !no_secret,
    })
}

/// The account and the change `accounts update` makes.
fn patch(args: UpdateArgs) -> (String, accounts::AccountPatch) {
    let UpdateArgs {
        account,
        name,
        description,
        roles,
        allowed_ips,
        allowed_resources,
        expires_in,
        expires_at,
        json: _,
    } = args;
    let list = |l: String| -> Vec<String> {
        l.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let patch = accounts::AccountPatch {
        name,
        description,
        roles: (!roles.is_empty()).then_some(roles),
        allowed_ips: allowed_ips.map(list),
        allowed_resources: allowed_resources.map(list),
        expires_in,
        expires_at,
        if_version: None,
    };
    (account, patch)
}

/// Deletes after asking, on a terminal; a script (no terminal) deletes as
/// the SPEC's break-glass command always has.
async fn delete(scope: &Scope<'_>, key: &str, yes: bool) -> Result<ServiceAccount, CliError> {
    let a = find(scope.db, key).await?;
    if !yes {
        let question = format!(
            "Delete service account `{}` ({}) in org `{}`? It can never authenticate again. [y/N] ",
            a.name,
            a.client_id.as_deref().unwrap_or(&a.id),
            a.org_id
        );
        if confirm(&question) == Some(false) {
            return Err(CliError::Usage("not deleted".into()));
        }
    }
    Ok(accounts::delete(scope, key).await?)
}

async fn list(
    db: &Db,
    org: Option<&str>,
    include_deleted: bool,
    json: bool,
) -> Result<(), CliError> {
    if let Some(o) = org
        && !db.org_exists(o).await?
    {
        return Err(no_org(o));
    }
    let list = db.list_accounts(org, include_deleted).await?;
    if json {
        println!("{}", Value::Array(list.iter().map(to_json).collect()));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            let status = if a.is_deleted() {
                "deleted"
            } else {
                a.status.as_str()
            };
            let last = rfc3339(a.last_used_at);
            vec![
                a.id.clone(),
                a.org_id.clone(),
                a.client_id.clone().unwrap_or_else(|| "-".into()),
                status.to_owned(),
                a.kind.as_str().to_owned(),
                last.as_str().unwrap_or("never").to_owned(),
                format!("{} [{}]", a.name, a.roles.join(",")),
            ]
        })
        .collect();
    super::table::print_table(
        &[
            "ID",
            "ORG",
            "CLIENT ID",
            "STATUS",
            "TYPE",
            "LAST USED",
            "NAME / ROLES",
        ],
        &rows,
    );
    Ok(())
}
