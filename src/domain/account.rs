//! Service accounts: their fields, states and the rules on their values.
use std::collections::{BTreeMap, BTreeSet};

use crate::domain::credentials::{PreviousSecret, secret_prefix};
use crate::domain::ip::IpAllowlist;
use crate::domain::roles::{RolePermissions, role_grants};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Credential,
    Integration,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::Integration => "integration",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "credential" => Some(Self::Credential),
            "integration" => Some(Self::Integration),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// A service account as stored. Times are Unix seconds.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub id: String,
    pub org_id: String,
    pub kind: AccountKind,
    pub name: String,
    pub description: String,
    pub client_id: Option<String>,
    /// Argon2id PHC string; never leaves the server.
    pub secret_hash: Option<String>,
    /// The public first characters of the current secret (`arm_sk_abcde`).
    pub secret_prefix: Option<String>,
    pub secret_created_at: Option<i64>,
    /// Rotated-out secrets, each accepted until its own grace period ends
    /// (expired ones may linger until the next change drops them).
    pub previous_secrets: Vec<PreviousSecret>,
    /// Bumped on every secret reset; refresh tokens carry the epoch they
    /// were issued under and die when it moves on.
    pub credential_epoch: i64,
    pub integration: Option<String>,
    pub roles: Vec<String>,
    pub allowed_ips: IpAllowlist,
    pub expires_at: Option<i64>,
    pub status: Status,
    pub created_at: i64,
    pub created_by: String,
    pub last_used_at: Option<i64>,
    /// The address of that last use, when known.
    pub last_used_ip: Option<String>,
    pub deleted_at: Option<i64>,
    /// Moves on with every change made by an admin or the operator; writes
    /// are conditional on it, and it is the account's ETag.
    pub version: i64,
    /// The APIs (resource-server audiences) it may get tokens for; empty:
    /// every API.
    pub allowed_resources: Vec<String>,
    /// Its organization's state, read with it.
    pub org: OrgState,
    /// The permissions of the stored roles it holds (its org's custom roles
    /// and global ones), as they stand when it was read. Built-in roles are
    /// in code; a role id missing from both holds nothing.
    pub stored_roles: BTreeMap<String, Vec<String>>,
}

/// What an organization imposes on every account in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgState {
    /// `disabled`: every account in it acts as disabled.
    pub status: Status,
    /// Applies on top of each account's own allowlist.
    pub allowed_ips: IpAllowlist,
}

impl Default for OrgState {
    fn default() -> Self {
        Self {
            status: Status::Active,
            allowed_ips: IpAllowlist::parse_stored(""),
        }
    }
}

impl ServiceAccount {
    /// The stored hash to check a presented secret against: the previous
    /// secret's while its grace period runs and the prefix names it, else
    /// the current one. One Argon2 verification either way.
    pub fn hash_for(&self, presented: &str, now: i64) -> Option<&str> {
        if !self.previous_secrets.is_empty() {
            let prefix = secret_prefix(presented);
            if self.secret_prefix.as_deref() != Some(prefix.as_str())
                && let Some(prev) = self
                    .previous_secrets
                    .iter()
                    .find(|p| p.expires_at > now && p.prefix == prefix)
            {
                return Some(&prev.hash);
            }
        }
        self.secret_hash.as_deref()
    }

    /// The rotated-out secrets still in their grace period.
    pub fn live_previous_secrets(&self, now: i64) -> impl Iterator<Item = &PreviousSecret> {
        self.previous_secrets
            .iter()
            .filter(move |p| p.expires_at > now)
    }

    /// Whether `prefix` names a secret that works now.
    pub fn has_live_secret_prefix(&self, prefix: &str, now: i64) -> bool {
        self.secret_prefix.as_deref() == Some(prefix)
            || self.live_previous_secrets(now).any(|p| p.prefix == prefix)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The live checks, in one place, for every path that lets an account
    /// act (token endpoint, introspection, the admin API): not deleted,
    /// active, unexpired at `now`, allowed from `ip`.
    pub fn check_usable(&self, now: i64, ip: Option<std::net::IpAddr>) -> Result<(), Unusable> {
        if self.is_deleted() {
            Err(Unusable::Deleted)
        } else if self.status == Status::Disabled {
            Err(Unusable::Disabled)
        } else if self.org.status == Status::Disabled {
            Err(Unusable::OrgDisabled)
        } else if self.is_expired(now) {
            Err(Unusable::Expired)
        } else if !self.allowed_ips.permits(ip) || !self.org.allowed_ips.permits(ip) {
            Err(Unusable::AddressNotAllowed)
        } else {
            Ok(())
        }
    }
    /// The permissions of each role it holds now (`role_grants`: built-in
    /// ones from code with a catalog's additions, stored ones as read with
    /// it). A role that no longer exists holds nothing.
    pub fn role_permissions(&self) -> RolePermissions {
        self.roles
            .iter()
            .filter_map(|r| Some((r.clone(), role_grants(r, self.stored_roles.get(r))?)))
            .collect()
    }

    /// Every permission it holds now, through any of its roles.
    pub fn permissions(&self) -> BTreeSet<String> {
        self.role_permissions().into_values().flatten().collect()
    }

    /// May it get (or use) tokens for the API with this audience (in any
    /// spelling of it)?
    pub fn may_use_api(&self, audience: &str) -> bool {
        self.allowed_resources.is_empty()
            || self
                .allowed_resources
                .iter()
                .any(|r| crate::domain::audience::same_resource(r, audience))
    }

    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// The rule that an org keeps a manager, in its one place: among `usable`
/// (accounts live, active and unexpired, as a change would leave them), an
/// org's credential account holds `org:manage`. Every write that could take
/// it away judges this inside its transaction, whoever asks (a service
/// account, a console person, the CLI's role edits): an account's edit,
/// disabling or deletion, a custom role's edit, a global role's edit in
/// each org it reaches.
pub fn keeps_a_manager(org: &str, usable: &[ServiceAccount]) -> bool {
    usable.iter().any(|a| {
        a.org_id == org
            && a.kind == AccountKind::Credential
            && a.permissions().contains(crate::domain::roles::ORG_MANAGE)
    })
}

/// Why an account may not act right now (`ServiceAccount::check_usable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Deleted,
    Disabled,
    /// Its organization is disabled.
    OrgDisabled,
    Expired,
    AddressNotAllowed,
}

impl Unusable {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Deleted => "the service account is deleted",
            Self::OrgDisabled => "the service account's organization is disabled",
            Self::Disabled => "the service account is disabled",
            Self::Expired => "the service account has expired",
            Self::AddressNotAllowed => "the service account may not be used from this address",
        }
    }
}

/// The expiry choices an admin has: `30d` … `1y`, or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresIn {
    Days(i64),
    Never,
}

impl ExpiresIn {
    pub const CHOICES: &'static str = "30d, 60d, 90d, 180d, 1y or never";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "30d" => Self::Days(30),
            "60d" => Self::Days(60),
            "90d" => Self::Days(90),
            "180d" => Self::Days(180),
            "1y" => Self::Days(365),
            "never" => Self::Never,
            _ => return None,
        })
    }

    /// The absolute expiry, counted from `now`.
    pub fn expires_at(self, now: i64) -> Option<i64> {
        match self {
            Self::Days(d) => Some(now + d * 86_400),
            Self::Never => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_choices() {
        assert_eq!(
            ExpiresIn::parse("1y").map(|e| e.expires_at(0)),
            Some(Some(365 * 86_400))
        );
        assert_eq!(
            ExpiresIn::parse("never").map(|e| e.expires_at(5)),
            Some(None)
        );
        assert_eq!(ExpiresIn::parse("7d"), None);
    }
}
