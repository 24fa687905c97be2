//! The throttle's side of authentication: which address a failure counts
//! against, refusing a throttled caller (429), counting failures (against
//! the client and address, or against the address alone for what a
//! stranger chose), and auditing a trip once per burst.
use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;

use super::client_auth::shown_client_id;
use super::{Context, OAuthError};
use crate::db::AuditEvent;
use crate::ratelimit::{AuthLimiter, Tripped};

/// The address failures are counted against; a request whose forwarded
/// chain could not be read (from a trusted proxy) counts as one bucket.
pub(super) fn limiter_ip(source_ip: Option<IpAddr>) -> IpAddr {
    source_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Refuses an attempt through a throttled (client id, address) or address.
pub(super) fn throttle(
    limiter: &AuthLimiter,
    client_id: &str,
    ip: IpAddr,
    endpoint: &'static str,
) -> Result<(), OAuthError> {
    limiter.check(client_id, ip).map_err(|wait| {
        metrics::counter!("warden_auth_throttled_total", "endpoint" => endpoint).increment(1);
        OAuthError::TooManyAttempts(wait.as_secs_f64().ceil().max(1.0) as u64)
    })
}

/// Counts a failed authentication against `limiter` and, when it trips a
/// limit, audits and logs that (the target, if known: its type, id and
/// org). The client id is recorded only if it has the shape of one (a
/// pasted secret must not land in the audit log).
pub(super) fn count_failure(
    ctx: &Context,
    limiter: &AuthLimiter,
    client_id: &str,
    ip: IpAddr,
    now: i64,
    target: Option<(&str, String, Option<String>)>,
) {
    let tripped = limiter.failed(client_id, ip);
    report_trip(ctx, tripped, client_id, ip, now, target);
}

/// Counts a failure against the address alone (what a stranger chose:
/// an unverified token's names), auditing a trip like `count_failure`.
pub(super) fn count_address_failure(ctx: &Context, limiter: &AuthLimiter, ip: IpAddr, now: i64) {
    let tripped = limiter.failed_address(ip);
    report_trip(ctx, tripped, "", ip, now, None);
}

fn report_trip(
    ctx: &Context,
    tripped: Tripped,
    client_id: &str,
    ip: IpAddr,
    now: i64,
    target: Option<(&str, String, Option<String>)>,
) {
    if tripped == Tripped::No {
        return;
    }
    let shown_id = shown_client_id(client_id);
    let grain = match tripped {
        Tripped::Client => "client_and_address",
        _ => "address",
    };
    tracing::warn!(
        client_id = shown_id.as_deref().unwrap_or("(not a client id)"),
        source_ip = %ip,
        grain,
        "too many failed authentications; throttling"
    );
    let mut ev = AuditEvent::new("anonymous", &ip.to_string(), "client.auth_throttled", now)
        .from_address(Some(ip.to_string()))
        .with(json!({"client_id": shown_id, "limit": grain}));
    if let Some((target_type, target_id, org)) = target {
        ev = ev.on(target_type, &target_id);
        ev.org_id = org;
    }
    ctx.bookkeeper.record(ev);
}

/// The Argon2 pool's queue an address waits in: its throttle bucket (IPv4
/// itself, IPv6 its /64), so one host's flood is one queue.
pub(super) fn address_queue_key(ip: IpAddr) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(crate::ratelimit::ip_key(ip))
}
