//! `warden keys …`
use clap::Subcommand;
use serde_json::{Value, json};

use super::CliError;
use crate::config::Config;
use crate::crypto::keys::{self, Alg, KeyStore};
use crate::manage::rfc3339;
use crate::now_unix;

#[derive(Subcommand, Debug)]
pub(super) enum KeysCmd {
    /// List keys and their state (signing, upcoming, retired).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a new signing key: published at once, signing after the
    /// publication delay.
    Rotate {
        /// ES256, EdDSA or RS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// How long the key is published before it signs (longer than
        /// resource servers cache the JWKS). Default: key_publication_delay.
        #[arg(long)]
        activate_in: Option<String>,
    },
    /// Delete retired keys that no unexpired token can have been signed
    /// with.
    Prune,
}

pub(super) fn run(cmd: KeysCmd, config: &Config) -> Result<(), CliError> {
    let now = now_unix();
    let fail = |e: keys::KeyError| CliError::Failure(e.to_string());
    match cmd {
        KeysCmd::List { json } => list(config, json, now),
        KeysCmd::Rotate { alg, activate_in } => rotate(config, &alg, activate_in, now),
        KeysCmd::Prune => {
            let pruned = keys::prune(
                &config.keys_dir,
                config.access_token_ttl.as_secs() as i64,
                config.key_reload_interval.as_secs() as i64,
                now,
            )
            .map_err(fail)?;
            if pruned.is_empty() {
                eprintln!(
                    "nothing to prune: every key is signing, upcoming, or may have signed a token that has not expired yet"
                );
            }
            for kid in pruned {
                println!("pruned {kid}");
            }
            Ok(())
        }
    }
}

fn list(config: &Config, json: bool, now: i64) -> Result<(), CliError> {
    let fail = |e: keys::KeyError| CliError::Failure(e.to_string());
    let store = KeyStore::open(&config.keys_dir, now).map_err(fail)?;
    let set = store.current();
    let rows: Vec<Value> = set
        .keys
        .iter()
        .map(|k| {
            let state = set.state_of(k, now);
            json!({"kid": k.meta.kid, "alg": k.meta.alg.as_str(), "state": state,
                   "created_at": rfc3339(Some(k.meta.created_at)),
                   "activate_at": rfc3339(Some(k.meta.activate_at))})
        })
        .collect();
    if json {
        println!("{}", Value::Array(rows));
    } else {
        let cell = |r: &Value, k: &str| r[k].as_str().unwrap_or("-").to_owned();
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                ["kid", "alg", "state", "created_at", "activate_at"]
                    .iter()
                    .map(|k| cell(r, k))
                    .collect()
            })
            .collect();
        super::table::print_table(&["KID", "ALG", "STATE", "CREATED", "ACTIVATES"], &rows);
    }
    Ok(())
}

fn rotate(
    config: &Config,
    alg: &str,
    activate_in: Option<String>,
    now: i64,
) -> Result<(), CliError> {
    let fail = |e: keys::KeyError| CliError::Failure(e.to_string());
    let alg = Alg::parse(alg)
        .ok_or_else(|| CliError::Usage("--alg must be ES256, EdDSA or RS256".into()))?;
    let delay = match activate_in {
        Some(text) => humantime::parse_duration(&text)
            .map_err(|_| CliError::Usage("--activate-in must be a duration such as 10m".into()))?,
        None => config.key_publication_delay,
    };
    if delay < config.key_reload_interval {
        eprintln!(
            "warning: --activate-in is shorter than key_reload_interval ({}s); a replica may sign with the key before another replica publishes it",
            config.key_reload_interval.as_secs()
        );
    }
    let meta = keys::rotate(&config.keys_dir, alg, delay.as_secs() as i64, now).map_err(fail)?;
    println!("{}", meta.kid);
    eprintln!(
        "key {} ({}) created: in every replica's JWKS within {} (the reload interval), signing from {} (in {})",
        meta.kid,
        meta.alg.as_str(),
        humantime::format_duration(config.key_reload_interval),
        rfc3339(Some(meta.activate_at)).as_str().unwrap_or("-"),
        humantime::format_duration(delay)
    );
    Ok(())
}
