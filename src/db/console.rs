//! The admin console's storage: one-time sign-in links, server-side
//! sessions and single sign-on in flight (its people are `members.rs`).
//! Every secret is kept as its SHA-256 only (links, session cookies, the SSO
//! browser binding); each single-use thing is spent by one conditional
//! statement (`… RETURNING`), so two requests at once cannot both use it.
use super::members::{Member, lock_people, people_managing, split};
use super::rows::{Cols, Decode, Param};
use super::write::insert_audits;
use super::{AuditEvent, Db, DbResult, on_db_write};
use crate::domain::console::LAST_ADMIN;

/// What a sign-in link grants, once.
#[derive(Debug, Clone)]
pub struct LinkGrant {
    pub org: String,
    pub subject: String,
    pub roles: Vec<String>,
}

/// A live session: the person, as they stand now, and its CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub org: String,
    pub org_active: bool,
    /// The org's allowlist, as stored.
    pub org_allowed_ips: String,
    pub member: Member,
    pub csrf: String,
    pub expires_at: i64,
}

impl Decode for Session {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self {
            org: r.text(0)?,
            org_active: r.text(1)? == "active",
            csrf: r.text(2)?,
            expires_at: r.int(3)?,
            member: Member {
                subject: r.text(4)?,
                email: r.opt_text(5)?,
                roles: split(&r.text(6)?),
                created_at: r.int(7)?,
                last_seen_at: r.opt_int(8)?,
            },
            org_allowed_ips: r.text(9)?,
        })
    }
}

/// A new session, to store at sign-in.
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub csrf: &'a str,
    pub org: &'a str,
    pub subject: &'a str,
    pub email: Option<&'a str>,
    /// The member's roles: set by the sign-in (a link's or the SSO rule's),
    /// or `None` to keep a known member's own (the console edits them).
    pub roles: Option<&'a [String]>,
    /// Hold the last-admin rule against the roles set (a link's: the
    /// operator's choice; not single sign-on's, whose provider is the
    /// source of truth).
    pub keep_manager: bool,
    pub now: i64,
    pub expires_at: i64,
}

/// SSO in flight, as taken back at the callback.
#[derive(Debug, Clone)]
pub struct SsoState {
    pub browser: String,
    pub nonce: String,
    pub verifier: String,
    pub expires_at: i64,
}

impl Decode for SsoState {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self {
            browser: r.text(0)?,
            nonce: r.text(1)?,
            verifier: r.text(2)?,
            expires_at: r.int(3)?,
        })
    }
}

struct LinkOrg(String);
impl Decode for LinkOrg {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self(r.text(0)?))
    }
}

struct Grant(String, String, String);
impl Decode for Grant {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self(r.text(0)?, r.text(1)?, r.text(2)?))
    }
}

impl Db {
    /// Stores a sign-in link (its token's hash), with its audit event.
    pub async fn create_console_link(
        &self,
        id_hash: &str,
        grant: &LinkGrant,
        now: i64,
        expires_at: i64,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        on_db_write!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO console_links (id, org_id, subject, roles, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id_hash)
            .bind(&grant.org)
            .bind(&grant.subject)
            .bind(grant.roles.join(" "))
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            insert_audits!(&mut *tx, std::slice::from_ref(audit))?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// An org's sign-in links not used yet and not expired, newest first:
    /// the first 16 hex digits of each one's hash (its id in the API and
    /// the CLI, which cannot be turned back into the link), the person,
    /// the roles, when made and until when usable.
    pub async fn pending_console_links(
        &self,
        org: Option<&str>,
        now: i64,
    ) -> DbResult<Vec<PendingLink>> {
        self.read_all(
            "SELECT SUBSTR(id, 1, 16), org_id, subject, roles, created_at, expires_at \
             FROM console_links WHERE used_at IS NULL AND expires_at > $2 \
             AND ($1 IS NULL OR org_id = $1) ORDER BY created_at DESC, id",
            &[Param::OptText(org), Param::Int(now)],
        )
        .await
    }

    /// Revokes an unused sign-in link of `org` (any org with `None`) by its
    /// id, with the audit event; `false` when no such link is pending.
    pub async fn revoke_console_link(
        &self,
        org: Option<&str>,
        id: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> DbResult<bool> {
        Ok(on_db_write!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "DELETE FROM console_links WHERE SUBSTR(id, 1, 16) = $1 AND used_at IS NULL \
                 AND expires_at > $2 AND ($3 IS NULL OR org_id = $3)",
            )
            .bind(id)
            .bind(now)
            .bind(org)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n >= 1 {
                insert_audits!(&mut *tx, std::slice::from_ref(audit))?;
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            n >= 1
        }))
    }

    /// The org of a link still usable, without spending it.
    pub async fn console_link_org(&self, id_hash: &str, now: i64) -> DbResult<Option<String>> {
        let row: Option<LinkOrg> = self
            .read_one(
                "SELECT org_id FROM console_links \
                 WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
                &[Param::Text(id_hash), Param::Int(now)],
            )
            .await?;
        Ok(row.map(|o| o.0))
    }

    /// Spends a sign-in link: what it grants, if it exists, is unexpired
    /// and was never used. One statement, so it is used at most once.
    pub async fn redeem_console_link(
        &self,
        id_hash: &str,
        now: i64,
    ) -> DbResult<Option<LinkGrant>> {
        let row: Option<Grant> = on_db_write!(self, p => {
            let row = super::rows::bound!(
                "UPDATE console_links SET used_at = $2 \
                 WHERE id = $1 AND used_at IS NULL AND expires_at > $2 \
                 RETURNING org_id, subject, roles",
                &[Param::Text(id_hash), Param::Int(now)]
            )
            .fetch_optional(p)
            .await?;
            row.map(|r| Grant::decode(&r)).transpose()?
        });
        Ok(row.map(|Grant(org, subject, roles)| LinkGrant {
            org,
            subject,
            roles: split(&roles),
        }))
    }

    /// Signs a person in: their member row (created, or roles set when the
    /// sign-in gives them), the session, and the sign-in's audit event, in
    /// one transaction. Expired sessions, links and SSO states go too.
    /// Roles set are checked, under the org row and the roles lock, to
    /// exist still and (with `keep_manager`) not to leave the org without
    /// a person able to manage it: `Conflict` otherwise, nothing written.
    pub async fn start_console_session(
        &self,
        s: &NewSession<'_>,
        audit: &AuditEvent,
    ) -> DbResult<()> {
        let roles = s.roles.map(|r| r.join(" "));
        on_db_write!(self, p => {
            let mut tx = p.begin().await?;
            let mut had = false;
            if s.roles.is_some() {
                lock_people!(tx, s.org, s.roles);
                had = s.keep_manager && people_managing!(tx, Some(s.org)).contains(s.org);
            }
            for sql in [
                "DELETE FROM console_sessions WHERE expires_at <= $1",
                "DELETE FROM console_links WHERE expires_at <= $1",
                "DELETE FROM console_sso_states WHERE expires_at <= $1",
            ] {
                sqlx::query(sql).bind(s.now).execute(&mut *tx).await?;
            }
            // A new member with no roles given holds none.
            sqlx::query(
                "INSERT INTO console_members (org_id, subject, email, roles, created_at, last_seen_at) \
                 VALUES ($1, $2, $3, COALESCE($4, ''), $5, $5) \
                 ON CONFLICT (org_id, subject) DO UPDATE SET \
                   email = COALESCE(excluded.email, console_members.email), \
                   roles = COALESCE($4, console_members.roles), \
                   last_seen_at = excluded.last_seen_at",
            )
            .bind(s.org)
            .bind(s.subject)
            .bind(s.email)
            .bind(roles.as_deref())
            .bind(s.now)
            .execute(&mut *tx)
            .await?;
            if had && !people_managing!(tx, Some(s.org)).contains(s.org) {
                tx.rollback().await?;
                return Err(super::DbError::Conflict(LAST_ADMIN.to_owned()));
            }
            sqlx::query(
                "INSERT INTO console_sessions (id, org_id, subject, csrf, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(s.id_hash)
            .bind(s.org)
            .bind(s.subject)
            .bind(s.csrf)
            .bind(s.now)
            .bind(s.expires_at)
            .execute(&mut *tx)
            .await?;
            insert_audits!(&mut *tx, std::slice::from_ref(audit))?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The live session with this cookie hash, with its person as they
    /// stand now (a removed member has no session).
    pub async fn console_session(&self, id_hash: &str, now: i64) -> DbResult<Option<Session>> {
        self.read_one(
            "SELECT s.org_id, o.status, s.csrf, s.expires_at, m.subject, m.email, m.roles, \
                    m.created_at, m.last_seen_at, o.allowed_ips \
             FROM console_sessions s \
             JOIN orgs o ON o.id = s.org_id \
             JOIN console_members m ON m.org_id = s.org_id AND m.subject = s.subject \
             WHERE s.id = $1 AND s.expires_at > $2",
            &[Param::Text(id_hash), Param::Int(now)],
        )
        .await
    }

    /// Ends a session (signing out), with its audit event when it existed.
    pub async fn end_console_session(&self, id_hash: &str, audit: &AuditEvent) -> DbResult<bool> {
        Ok(on_db_write!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query("DELETE FROM console_sessions WHERE id = $1")
                .bind(id_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                insert_audits!(&mut *tx, std::slice::from_ref(audit))?;
            }
            tx.commit().await?;
            n == 1
        }))
    }

    /// Records a single sign-on in flight, keyed by its `state`.
    pub async fn put_sso_state(&self, state: &str, s: &SsoState) -> DbResult<()> {
        // Flows nobody finished go as new ones start, so the table holds
        // at most one flow lifetime's worth.
        on_db_write!(self, p => sqlx::query("DELETE FROM console_sso_states WHERE expires_at < $1")
            .bind(crate::now_unix())
            .execute(p)
            .await
            .map(|_| ())?);
        on_db_write!(self, p => sqlx::query(
            "INSERT INTO console_sso_states (state, browser, nonce, verifier, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(state)
        .bind(&s.browser)
        .bind(&s.nonce)
        .bind(&s.verifier)
        .bind(s.expires_at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Takes a single sign-on in flight: it can be taken once.
    pub async fn take_sso_state(&self, state: &str) -> DbResult<Option<SsoState>> {
        Ok(on_db_write!(self, p => {
            let row = super::rows::bound!(
                "DELETE FROM console_sso_states WHERE state = $1 \
                 RETURNING browser, nonce, verifier, expires_at",
                &[Param::Text(state)]
            )
            .fetch_optional(p)
            .await?;
            row.map(|r| SsoState::decode(&r)).transpose()?
        }))
    }
}

/// A sign-in link not used yet (`Db::pending_console_links`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PendingLink {
    /// The first 16 hex digits of the link's hash.
    pub id: String,
    pub org: String,
    /// `link:<name>`.
    pub subject: String,
    pub roles: Vec<String>,
    #[serde(skip)]
    pub created_at: i64,
    #[serde(skip)]
    pub expires_at: i64,
}

impl Decode for PendingLink {
    fn decode<C: Cols>(r: &C) -> Result<Self, C::Error> {
        Ok(Self {
            id: r.text(0)?,
            org: r.text(1)?,
            subject: r.text(2)?,
            roles: split(&r.text(3)?),
            created_at: r.int(4)?,
            expires_at: r.int(5)?,
        })
    }
}
