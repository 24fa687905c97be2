//! `warden accounts credentials …`: an account's secrets and public keys,
//! and adding or removing a key, as the operator.
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
    /// Add a public key (a JWK file, `-` for standard input) the account
    /// authenticates with (`private_key_jwt`).
    AddKey {
        /// The account's id or client id.
        account: String,
        /// The public JWK, as a file.
        #[arg(long, value_name = "FILE")]
        jwk: String,
        /// 30d, 60d, 90d, 180d, 1y or never.
        #[arg(long, default_value = "never")]
        expires_in: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove one of the account's keys.
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

pub(super) async fn run(cmd: CredentialsCmd, db: &Db) -> Result<(), CliError> {
    let scope = Scope::operator(db);
    match cmd {
        CredentialsCmd::List { account, json } => {
            let list = credentials::list(&scope, &account).await?;
            if json {
                println!("{}", serde_json::to_value(&list).unwrap_or_default());
                return Ok(());
            }
            println!("{:<38}  {:<10}  {:<21}  LAST USED", "ID", "TYPE", "EXPIRES");
            for c in list {
                let dash = || "-".to_owned();
                println!(
                    "{:<38}  {:<10}  {:<21}  {}",
                    c.id,
                    c.kind,
                    c.expires_at.unwrap_or_else(dash),
                    c.last_used_at.unwrap_or_else(dash)
                );
            }
            Ok(())
        }
        CredentialsCmd::AddKey {
            account,
            jwk,
            expires_in,
            json,
        } => {
            let new = NewCredential::PublicKey(read_jwk(&jwk)?);
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
