//! `hot.rs`: the inline reader and the pools agree on every hot read.
#![allow(clippy::unwrap_used)]
use crate::db::audit::{OPERATOR_ID, OPERATOR_TYPE};

use crate::db::{AuditEvent, Db};
use crate::domain::account::AccountKind;
use crate::manage::Actor;
use crate::manage::accounts::NewAccount;

/// The inline SQLite reader and the sqlx pool decode the hot-path rows
/// identically (every column, NULLs included), and a broken inline
/// reader falls back to the pool with the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_reads_match_the_pool() {
    let (_dir, db) = Db::temp_sqlite().await;
    let ev = AuditEvent::new(OPERATOR_TYPE, OPERATOR_ID, "org.created", 1)
        .in_org("acme")
        .on("org", "acme");
    db.create_org("acme", "Acme", 1, &ev).await.unwrap();
    let actor = Actor::operator();
    let (rs, _) = crate::manage::resource_servers::create(
        &db,
        "api",
        "https://api.test",
        vec![crate::domain::roles::ApiPermission {
            name: "billing:read".into(),
            description: "Read invoices".into(),
        }],
        "https://warden.test",
        &actor,
        2,
    )
    .await
    .unwrap();
    // Stored roles are decoded with the account: an org's and a global one.
    for (org, id) in [(Some("acme"), "acme-reader"), (None, "everyones")] {
        let perms = ["billing:read".to_owned()];
        let role = crate::manage::roles::create(&db, org, id, "", &perms, &actor, 2);
        role.await.unwrap();
    }
    let new = |name: &str, ips: Vec<String>, expires: Option<&str>| NewAccount {
        org: "acme".into(),
        kind: AccountKind::Credential,
        name: name.into(),
        description: "d".into(),
        integration: None,
        roles: vec!["acme-reader".into(), "everyones".into(), "viewer".into()],
        allowed_ips: ips,
        expires_in: expires.map(Into::into),
        expires_at: None,
        // Decoded by the hot reads too.
        allowed_resources: vec!["https://api.test".into()],
        with_secret: true,
    };
    let (plain, _) = crate::manage::accounts::create(&db, new("plain", vec![], None), &actor, 3)
        .await
        .unwrap();
    let (fenced, _) = crate::manage::accounts::create(
        &db,
        new(
            "fenced",
            vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            Some("30d"),
        ),
        &actor,
        4,
    )
    .await
    .unwrap();
    let at_5 = crate::manage::Scope {
        db: &db,
        org: None,
        actor: &actor,
        now: 5,
    };
    crate::manage::accounts::rotate_secret(&at_5, &fenced.id, 3600)
        .await
        .unwrap();
    let ev = AuditEvent::new(OPERATOR_TYPE, OPERATOR_ID, "token.revoked", 6)
        .in_org("acme")
        .on("token", "jti-1");
    db.revoke_access_token("jti-1", fenced.client_id.as_deref().unwrap(), 9_999, 6, &ev)
        .await
        .unwrap();

    // A public key, read with the account when asked for.
    let key = crate::db::credentials::StoredCredential {
        id: "cred-1".into(),
        account_id: fenced.id.clone(),
        kind: "public_key".into(),
        jwk: Some(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#
                .into(),
        ),
        created_at: 6,
        created_by: "operator:local-operator".into(),
        expires_at: None,
        last_used_at: None,
        last_used_ip: None,
        issuer: None,
        subject: None,
        audience: None,
        claims: String::new(),
        jwks_uri: None,
    };
    let ev = AuditEvent::new(OPERATOR_TYPE, OPERATOR_ID, "credential.added", 6).in_org("acme");
    db.insert_credential(&key, &ev, None).await.unwrap();

    // A federated credential, read with its account by issuer and subject.
    let trust = crate::db::credentials::StoredCredential {
        id: "cred-2".into(),
        kind: "federated".into(),
        jwk: None,
        issuer: Some("https://ci.test".into()),
        subject: Some("repo:acme/app".into()),
        audience: Some("https://warden.test".into()),
        claims: r#"{"repository_id":"1"}"#.into(),
        ..key.clone()
    };
    db.insert_credential(&trust, &ev, None).await.unwrap();

    let pool = db.without_inline();
    let broken = db.with_broken_inline();
    for aud in [Some("https://api.test"), None] {
        let read = |d: &Db| {
            let d = d.clone();
            async move {
                format!(
                    "{:?}",
                    d.federated_candidates("https://ci.test", "repo:acme/app", aud, None, 5)
                        .await
                        .unwrap()
                )
            }
        };
        let want = read(&pool).await;
        assert!(
            want.contains("cred-2") && want.contains("repository_id"),
            "{want}"
        );
        assert_eq!(read(&db).await, want);
        assert_eq!(read(&broken).await, want);
    }
    // Only the named client's, when one is named.
    let fenced_id = fenced.client_id.as_deref();
    for (client, n) in [(fenced_id, 1), (plain.client_id.as_deref(), 0)] {
        let got = db
            .federated_candidates("https://ci.test", "repo:acme/app", None, client, 5)
            .await
            .unwrap();
        assert_eq!(got.len(), n);
    }
    for a in [&plain, &fenced] {
        let id = a.client_id.as_deref().unwrap();
        for aud in [Some("https://api.test"), Some("https://other.test"), None] {
            let want = format!(
                "{:?}",
                pool.account_for_token(id, aud, Some(5)).await.unwrap()
            );
            assert!(want.starts_with("Some"), "{want}");
            let stored = r#"{"acme-reader": ["billing:read"], "everyones": ["billing:read"]}"#;
            assert!(want.contains(stored), "{want}");
            let has_key = want.contains(r#"AccountKey { id: "cred-1", jwk: "{\"kty\":\"OKP\""#);
            assert_eq!(has_key, a.id == fenced.id, "{want}");
            assert_eq!(
                format!(
                    "{:?}",
                    db.account_for_token(id, aud, Some(5)).await.unwrap()
                ),
                want
            );
            assert_eq!(
                format!(
                    "{:?}",
                    broken.account_for_token(id, aud, Some(5)).await.unwrap()
                ),
                want
            );
        }
        for (acct, jti) in [(id, "jti-1"), (id, "jti-2"), ("arm_sa_missing", "jti-1")] {
            let ctx = |c: Option<super::IntrospectionContext>| {
                c.map(|c| format!("{:?} {:?}", c.resource_server, c.account))
            };
            let want = ctx(pool
                .introspection_context(&rs.client_id, acct, super::TokenRef { jti, family: None })
                .await
                .unwrap());
            assert!(want.is_some());
            let got = ctx(db
                .introspection_context(&rs.client_id, acct, super::TokenRef { jti, family: None })
                .await
                .unwrap());
            assert_eq!(got, want);
            let got = ctx(broken
                .introspection_context(&rs.client_id, acct, super::TokenRef { jti, family: None })
                .await
                .unwrap());
            assert_eq!(got, want);
        }
    }
    // Refresh-token families: the revocation check reads inline.
    for (d, fam) in [(&db, "fam-a"), (&broken, "fam-b")] {
        use crate::db::refresh::{Spend, SpendRequest};
        let spend = |jti: &'static str| SpendRequest {
            jti,
            family: fam,
            account_id: &plain.id,
            expires_at: 9_999,
            now: 7,
        };
        let ev = AuditEvent::new(OPERATOR_TYPE, OPERATOR_ID, "refresh.reused", 7)
            .in_org("acme")
            .on("family", fam);
        let jti1 = if fam == "fam-a" { "a1" } else { "b1" };
        let jti2 = if fam == "fam-a" { "a2" } else { "b2" };
        assert_eq!(
            d.spend_refresh_token(&spend(jti1), &ev).await.unwrap(),
            Spend::Won
        );
        assert_eq!(
            d.spend_refresh_token(&spend(jti1), &ev).await.unwrap(),
            Spend::Reused
        );
        assert_eq!(
            d.spend_refresh_token(&spend(jti2), &ev).await.unwrap(),
            Spend::FamilyRevoked
        );
    }
    // The inline reads really ran inline, every one of them, and the
    // broken ones did not.
    let idle = |d: &Db| match d {
        Db::Sqlite(p) => p.inline.as_ref().map(|r| r.idle()),
        Db::Postgres(_) => None,
    };
    let failures = |d: &Db| match d {
        Db::Sqlite(p) => p.inline.as_ref().map(|r| r.failures()),
        Db::Postgres(_) => None,
    };
    assert_eq!(idle(&db), Some(1));
    assert_eq!(
        failures(&db),
        Some(0),
        "an inline read fell back to the pool"
    );
    assert_eq!(idle(&broken), Some(0));
    // 6 token reads, 6 introspection reads, 2 federated reads, 3 family
    // checks.
    assert_eq!(failures(&broken), Some(17));
    assert!(
        db.account_for_token("arm_sa_missing", None, None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.introspection_context(
            "arm_sa_nobody",
            "x",
            super::TokenRef {
                jti: "y",
                family: None
            }
        )
        .await
        .unwrap()
        .is_none()
    );
}
