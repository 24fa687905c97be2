//! `warden accounts credentials …`: an account's secrets, public keys and
//! federated trusts, and adding or removing a key or a trust, as the
//! operator.
use clap::Subcommand;

use super::{CliError, print_object};
use crate::db::Db;
use crate::manage::Scope;
use crate::manage::accounts::credentials::{self, NewCredential};

#[derive(Subcommand, Debug)]
pub(super) enum CredentialsCmd {
    /// List an account's credentials: its secrets (by prefix) and keys.
    List {
        /// The account's id or client id.
        account: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a public key (a JWK file, `-` for standard input), or the URL
    /// where the client publishes its keys, that the account authenticates
    /// with (`private_key_jwt`).
    AddKey {
        /// The account's id or client id.
        account: String,
        /// The public JWK, as a file.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "jwks_uri",
            conflicts_with = "jwks_uri"
        )]
        jwk: Option<String>,
        /// Instead of --jwk: the https URL of the client's JWK Set.
        #[arg(long, value_name = "URL")]
        jwks_uri: Option<String>,
        /// 30d, 60d, 90d, 180d, 1y or never.
        #[arg(long, default_value = "never")]
        expires_in: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Trust an external issuer's tokens for the account (a federated
    /// credential): a token with this issuer and subject, whose audience
    /// includes this audience and whose claims match, gets the account's
    /// access tokens at the token endpoint.
    AddFederated {
        /// The account's id or client id.
        account: String,
        /// The issuer's URL, exactly as its tokens' `iss` says it.
        #[arg(long)]
        issuer: String,
        /// The tokens' `sub`, exactly.
        #[arg(long)]
        subject: String,
        /// A value the tokens' `aud` must contain.
        #[arg(long)]
        audience: String,
        /// A claim the tokens must carry with exactly this value, as
        /// NAME=VALUE (a string), or NAME:=JSON for a number or boolean;
        /// repeatable.
        #[arg(long = "claim", value_name = "NAME=VALUE")]
        claims: Vec<String>,
        /// 30d, 60d, 90d, 180d, 1y or never.
        #[arg(long, default_value = "never")]
        expires_in: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove one of the account's keys or federated trusts (or end a
    /// rotated-out secret, by its prefix).
    Remove {
        /// The account's id or client id.
        account: String,
        /// The credential's id.
        credential: String,
    },
}

impl CredentialsCmd {
    /// Whether it only reads.
    pub(super) fn reads_only(&self) -> bool {
        matches!(self, Self::List { .. })
    }
}

fn read_jwk(path: &str) -> Result<serde_json::Value, CliError> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| CliError::Usage(format!("--jwk {path}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("--jwk {path}: not JSON: {e}")))
}

/// `--claim` values as a JSON object: `NAME=text` is a string, and
/// `NAME:=json` a number or boolean.
fn parse_claims(claims: &[String]) -> Result<Option<serde_json::Value>, CliError> {
    if claims.is_empty() {
        return Ok(None);
    }
    let mut out = serde_json::Map::new();
    for c in claims {
        let usage = || CliError::Usage(format!("--claim {c}: NAME=VALUE or NAME:=JSON"));
        let (name, value) = match c.split_once('=') {
            Some((n, v)) if n.ends_with(':') => (
                n.trim_end_matches(':'),
                serde_json::from_str(v).map_err(|_| usage())?,
            ),
            Some((n, v)) => (n, serde_json::Value::String(v.to_owned())),
            None => return Err(usage()),
        };
        if name.is_empty() || out.insert(name.to_owned(), value).is_some() {
            return Err(usage());
        }
    }
    Ok(Some(serde_json::Value::Object(out)))
}

pub(super) async fn run(
    cmd: CredentialsCmd,
    db: &Db,
    federation: &super::accounts::Federation,
) -> Result<(), CliError> {
    let scope = Scope::operator(db);
    match cmd {
        CredentialsCmd::List { account, json } => {
            let list = credentials::list(&scope, &account).await?;
            if json {
                println!("{}", serde_json::to_value(&list).unwrap_or_default());
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .into_iter()
                .map(|c| {
                    vec![
                        c.id,
                        c.kind.to_string(),
                        super::table::or_dash(c.expires_at),
                        super::table::or_dash(c.last_used_at),
                    ]
                })
                .collect();
            super::table::print_table(&["ID", "TYPE", "EXPIRES", "LAST USED"], &rows);
            Ok(())
        }
        CredentialsCmd::AddKey {
            account,
            jwk,
            jwks_uri,
            expires_in,
            json,
        } => {
            let new = match (jwk, jwks_uri) {
                (Some(file), _) => NewCredential::PublicKey(read_jwk(&file)?),
                (None, Some(jwks_uri)) => NewCredential::KeySet {
                    jwks_uri,
                    allow_http: federation.allow_http,
                },
                (None, None) => return Err(CliError::Usage("--jwk or --jwks-uri".into())),
            };
            let view = credentials::add(&scope, &account, new, Some(&expires_in)).await?;
            print_object(serde_json::to_value(view).unwrap_or_default(), None, json);
            Ok(())
        }
        CredentialsCmd::AddFederated {
            account,
            issuer,
            subject,
            audience,
            claims,
            expires_in,
            json,
        } => {
            let new = NewCredential::Federated {
                issuer,
                subject,
                audience,
                claims: parse_claims(&claims)?,
                allow_http: federation.allow_http,
                own_issuer: federation.own_issuer.clone(),
            };
            let view = credentials::add(&scope, &account, new, Some(&expires_in)).await?;
            print_object(serde_json::to_value(view).unwrap_or_default(), None, json);
            Ok(())
        }
        CredentialsCmd::Remove {
            account,
            credential,
        } => {
            credentials::remove(&scope, &account, &credential).await?;
            println!("removed credential {credential}");
            Ok(())
        }
    }
}
