//! The re-check every API and console write runs inside its own
//! transaction (`OrgGuard`): the caller may still write, as it stands when
//! the transaction takes the org's lock, and the org keeps a manager.
use super::{Actor, Authority, USER};
use crate::db::write::{OrgGuard, OrgSnapshot};
use crate::domain::account::keeps_a_manager;
use crate::domain::roles::ORG_MANAGE;

impl Actor {
    /// The check every write by an API or console caller runs inside its
    /// own transaction, on the org as the write leaves it (`OrgGuard`):
    ///
    /// - The caller may still write: a service account is live, active,
    ///   unexpired, in an active org, permits the caller's address (its
    ///   own allowlist and its org's), and still holds every permission the
    ///   request was authorised with; a person still has their session,
    ///   is still a member holding those permissions, and their org is
    ///   active and admits their address. Without this a caller disabled,
    ///   removed or fenced while its request was in flight (a slow body)
    ///   could still finish it.
    /// - No lockout: when the caller changes its own account, the same
    ///   holds afterwards (refused as "would lock you out").
    /// - With `org_wide`, an org that had an active credential account
    ///   holding `org:manage` keeps one (`keeps_a_manager`), whoever asks.
    pub(crate) fn check_in_write(
        &self,
        target: Option<&str>,
        org_wide: bool,
        org: &OrgSnapshot,
    ) -> Result<(), String> {
        if let Some(auth) = &self.authority {
            if self.kind == USER {
                self.person_still_may(auth, org)?;
            } else if let Some(me) = self.own_account() {
                self.account_still_may(me, auth, target, org)?;
            }
        }
        if org_wide && org.had_manager && !keeps_a_manager(&org.org, &org.usable) {
            return Err(format!(
                "refused: the organization would have no active service account \
                 holding `{ORG_MANAGE}`"
            ));
        }
        Ok(())
    }

    fn account_still_may(
        &self,
        me: &str,
        auth: &Authority,
        target: Option<&str>,
        org: &OrgSnapshot,
    ) -> Result<(), String> {
        let why = if target == Some(me) {
            "refused: this would lock you out"
        } else {
            "refused: your own account changed while this request was in flight"
        };
        let Some(mine) = org.usable.iter().find(|a| a.id == me) else {
            return Err(format!(
                "{why} (your account would be disabled, deleted or expired)"
            ));
        };
        let held = mine.permissions();
        if let Some(p) = std::iter::once(ORG_MANAGE)
            .chain(auth.permissions.iter().map(String::as_str))
            .find(|p| !held.contains(*p))
        {
            return Err(format!("{why} (your account would no longer hold `{p}`)"));
        }
        // The rules also lean on the `admin` role itself (only an admin
        // grants it or acts on an admin): it must still be held too.
        if auth.has_role("admin") && !mine.roles.iter().any(|r| r == "admin") {
            return Err(format!(
                "{why} (your account would no longer hold the admin role)"
            ));
        }
        let ip = self.source_ip.as_deref().and_then(|i| i.parse().ok());
        if !mine.allowed_ips.permits(ip) {
            return Err(format!(
                "{why} (your address {} would be outside your own allowlist)",
                self.source_ip.as_deref().unwrap_or("(unknown)")
            ));
        }
        match &org.caller_org {
            Some(o) if !o.active => Err(format!("{why} (your account's organization is disabled)")),
            Some(o) if !o.allowed_ips.permits(ip) => Err(format!(
                "{why} (your address {} is outside your organization's allowlist)",
                self.source_ip.as_deref().unwrap_or("(unknown)")
            )),
            Some(_) => Ok(()),
            None => Err(format!("{why} (your account is gone)")),
        }
    }

    fn person_still_may(&self, auth: &Authority, org: &OrgSnapshot) -> Result<(), String> {
        const WHY: &str = "refused: your access changed while this request was in flight";
        let Some(Some(me)) = &org.person else {
            return Err(format!(
                "{WHY} (your console session ended: signed out, expired, or removed from the \
                 organization)"
            ));
        };
        let ip = self.source_ip.as_deref().and_then(|i| i.parse().ok());
        if !me.org.active {
            return Err(format!("{WHY} (your organization is disabled)"));
        }
        if !me.org.allowed_ips.permits(ip) {
            return Err(format!(
                "{WHY} (your address {} is outside your organization's allowlist)",
                self.source_ip.as_deref().unwrap_or("(unknown)")
            ));
        }
        if let Some(p) = auth
            .permissions
            .iter()
            .find(|p| !me.permissions.contains(*p))
        {
            return Err(format!("{WHY} (you no longer hold `{p}`)"));
        }
        if auth.has_role("admin") && !me.roles.iter().any(|r| r == "admin") {
            return Err(format!("{WHY} (you no longer hold the admin role)"));
        }
        Ok(())
    }

    /// The in-transaction guard for a write by this actor in `org`, or
    /// `None` for the operator (the CLI is the way back from any state).
    /// `org_wide` when the write could take `org:manage` from someone.
    pub(crate) fn guard<'a>(
        &'a self,
        org: &'a str,
        org_wide: bool,
        check: &'a (dyn Fn(&OrgSnapshot) -> Result<(), String> + Send + Sync),
    ) -> Option<OrgGuard<'a>> {
        self.authority.as_ref()?;
        let me = self.own_account();
        Some(OrgGuard {
            org,
            // Expiry is judged as of the write, not of the request's start.
            now: crate::now_unix(),
            // Not org-wide: only the caller's own account is read (none for
            // a person).
            only: (!org_wide).then_some(me.unwrap_or("")),
            caller: me,
            person: self.session.as_deref().filter(|_| self.kind == USER),
            check,
        })
    }
}
