//! A token request's audience (RFC 8707): which one it gets, whether the
//! account may have it, and which permissions a token for it may carry.
use super::{Context, OAuthError};
use crate::crypto::refresh::RefreshGrant;
use crate::db::hot::Audience;
use crate::domain::account::ServiceAccount;
use crate::domain::audience::{audience_key, same_resource};
use crate::domain::resource_server::validate_audience;
use crate::domain::roles::AudiencePermissions;

/// RFC 8707: `aud` is the requested resource when it is a registered
/// resource server, warden's own issuer URL (the admin API) or the default
/// audience; without `resource`, the default audience. A resource is
/// matched in any spelling of it (`domain::audience`); `aud` is the
/// registered one.
const UNKNOWN_RESOURCE: &str = "the requested resource is not known to this server";

/// The key to look `resource` up by, when the database may know it (not
/// the issuer, and well-formed). The default audience is looked up too:
/// it may be an API that declares permissions.
pub(super) fn lookup_key(ctx: &Context, resource: &str) -> Option<String> {
    (!same_resource(resource, &ctx.issuer) && validate_audience(resource).is_ok())
        .then(|| audience_key(resource))
}

/// An account limited to some APIs (`allowed_resources`) gets tokens for
/// no other API (the admin API and the default audience are not APIs).
pub(super) fn check_api_allowed(
    account: &ServiceAccount,
    aud: &str,
    probed: &Audience,
) -> Result<(), OAuthError> {
    if matches!(probed, Audience::Api { .. }) && !account.may_use_api(aud) {
        return Err(OAuthError::InvalidTarget(
            "this service account may not get tokens for the requested resource",
        ));
    }
    Ok(())
}

/// Which of the account's permissions a token for `aud` may carry: the
/// admin API's own for the issuer, what a registered API declares (all,
/// if it declares none), all for the default audience.
pub(super) fn audience_permissions(
    ctx: &Context,
    aud: &str,
    probed: &Audience,
) -> AudiencePermissions {
    if aud == ctx.issuer {
        return AudiencePermissions::AdminApi;
    }
    match probed {
        Audience::Api { permissions, .. } => AudiencePermissions::of_api(permissions),
        Audience::Unknown => AudiencePermissions::All,
    }
}

/// The token's audience, as its registration spells it: the issuer when
/// the requested resource is the issuer, a live resource server's
/// audience when it is one (`probed`, read with the account), the
/// default audience when it is that or none is requested.
pub(super) fn checked_audience(
    ctx: &Context,
    resource: Option<&str>,
    probed: &Audience,
) -> Result<String, OAuthError> {
    match (resource, probed) {
        (Some(r), _) if same_resource(r, &ctx.issuer) => Ok(ctx.issuer.clone()),
        (Some(r), _) if validate_audience(r).is_err() => Err(OAuthError::InvalidTarget(
            "resource must be an absolute URI without a fragment",
        )),
        (_, Audience::Api { audience, .. }) => Ok(audience.clone()),
        (None, _) => Ok(ctx.default_audience.clone()),
        (Some(r), _) if same_resource(r, &ctx.default_audience) => Ok(ctx.default_audience.clone()),
        (Some(_), _) => Err(OAuthError::InvalidTarget(UNKNOWN_RESOURCE)),
    }
}

/// A refresh's audience: its own (RFC 8707 §2.2: a refresh may name a
/// resource only within the original grant), checked again on every
/// refresh, so a refresh token for a resource server deleted since stops
/// working, even once its audience is registered again.
pub(super) fn refresh_audience(
    ctx: &Context,
    old: &RefreshGrant,
    resource: Option<&str>,
    probed: &Audience,
) -> Result<String, OAuthError> {
    // Only the issuer itself is the admin API: a refresh token for another
    // spelling of it (a resource server registered so before audiences
    // were matched by key) never becomes an admin-API token.
    if old.aud != ctx.issuer && same_resource(&old.aud, &ctx.issuer) {
        return Err(OAuthError::InvalidGrant(
            "the resource server this refresh token was issued for no longer exists",
        ));
    }
    if resource.is_some_and(|r| !same_resource(r, &old.aud)) {
        return Err(OAuthError::InvalidTarget(
            "a refresh token issues tokens only for the resource it was issued for",
        ));
    }
    if let Audience::Api { since, .. } = probed
        && old.iat < *since
    {
        return Err(OAuthError::InvalidGrant(
            "the refresh token was issued for an earlier registration of this resource",
        ));
    }
    match checked_audience(ctx, Some(&old.aud), probed) {
        Err(OAuthError::InvalidTarget(_)) if resource.is_none() => Err(OAuthError::InvalidGrant(
            "the resource server this refresh token was issued for no longer exists",
        )),
        other => other,
    }
}

/// A default audience that is the issuer in any spelling of it (a trailing
/// slash, case, a default port: `domain::audience`) would make every token
/// requested without `resource` an admin-API token: refused at start, as a
/// resource server's audience is. The message names the setting.
pub fn refuse_issuer_as_default_audience(
    default: Option<&str>,
    issuer: &str,
) -> Result<(), String> {
    let bare = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
    match default {
        Some(d) if bare(d) == bare(issuer) || same_resource(d, issuer) => Err(format!(
            "invalid WARDEN_DEFAULT_AUDIENCE: it is the issuer ({issuer}), which would make every \
             token requested without `resource` an admin-API token; name one of your APIs, or unset it"
        )),
        _ => Ok(()),
    }
}
