//! A federated credential: trust in an external issuer's JWTs (a CI
//! platform's, a Kubernetes cluster's, a SPIFFE trust domain's, another
//! warden's). A token matches when its `iss` and `sub` are the
//! credential's, its `aud` contains the credential's audience, and every
//! claim the credential names has exactly the value it names. A claim
//! name that starts with `/` is a JSON Pointer (RFC 6901) into the claims,
//! for nested claims (a Kubernetes token's
//! `/kubernetes.io/serviceaccount/uid`).
use serde_json::{Map, Value};

/// The most exact-match claims one credential names.
pub const MAX_CLAIMS: usize = 16;

/// The longest issuer, subject, audience or claim value accepted.
pub const MAX_FIELD_LEN: usize = 512;

/// Claims matched by their own fields, or meaningless to match on.
const RESERVED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// The trust a federated credential holds, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedTrust {
    /// The issuer URL, exactly as the tokens' `iss` says it.
    pub issuer: String,
    /// The tokens' `sub`, exactly.
    pub subject: String,
    /// A value the tokens' `aud` must contain.
    pub audience: String,
    /// Claims that must have exactly these values (a JSON object of
    /// strings, numbers and booleans).
    pub claims: Map<String, Value>,
}

/// Why a federated credential is refused: the field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustError(pub &'static str, pub String);

fn bounded(field: &'static str, v: &str) -> Result<(), TrustError> {
    if v.is_empty() || v.len() > MAX_FIELD_LEN || v.chars().any(char::is_control) {
        return Err(TrustError(
            field,
            format!("1 to {MAX_FIELD_LEN} characters, no control characters"),
        ));
    }
    Ok(())
}

/// Checks an issuer URL: absolute `https` (or `http`: allowed only when
/// the deployment says so, `allow_http`), with a host, and without
/// credentials, query or fragment (OpenID Discovery §4 appends the
/// well-known path to it).
pub fn validate_issuer(issuer: &str, allow_http: bool) -> Result<(), TrustError> {
    validate_fetch_url("issuer", issuer, allow_http)
}

/// Checks a URL warden will fetch from (an issuer, a `jwks_uri`), as
/// `validate_issuer` does; errors name `field`.
pub fn validate_fetch_url(
    field: &'static str,
    url: &str,
    allow_http: bool,
) -> Result<(), TrustError> {
    bounded(field, url)?;
    let bad = |why: &str| TrustError(field, why.to_owned());
    let u = url::Url::parse(url).map_err(|_| bad("an absolute https URL"))?;
    match u.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(bad(
                "must be https (plain http only with WARDEN_FEDERATION_ALLOW_HTTP=true, for development)",
            ));
        }
        _ => return Err(bad("an absolute https URL")),
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    // A literal address is judged now, as a fetch would judge it (a name
    // is judged as it resolves, at fetch time).
    let literal = match u.host() {
        Some(url::Host::Ipv4(a)) => Some(std::net::IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(std::net::IpAddr::V6(a)),
        _ => None,
    };
    if literal.is_some_and(|ip| !crate::domain::ip::fetchable(ip, allow_http)) {
        return Err(bad(
            "the URL's address is loopback, link-local or a metadata service, which warden never fetches from",
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("the URL may not carry credentials"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("the URL may not have a query or fragment"));
    }
    Ok(())
}

impl FederatedTrust {
    /// Validates the parts of a new federated credential.
    pub fn new(
        issuer: &str,
        subject: &str,
        audience: &str,
        claims: Option<&Value>,
        allow_http: bool,
    ) -> Result<Self, TrustError> {
        validate_issuer(issuer, allow_http)?;
        bounded("subject", subject)?;
        bounded("audience", audience)?;
        let claims = match claims {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(TrustError(
                    "claims",
                    "a JSON object of claim names to exact values".into(),
                ));
            }
        };
        if claims.len() > MAX_CLAIMS {
            return Err(TrustError("claims", format!("at most {MAX_CLAIMS} claims")));
        }
        for (k, v) in &claims {
            bounded("claims", k)?;
            let top = k
                .strip_prefix('/')
                .map_or(k.as_str(), |p| p.split('/').next().unwrap_or_default());
            if k == "/" || RESERVED.contains(&top) {
                return Err(TrustError(
                    "claims",
                    format!("`{k}` is matched by its own field or not at all"),
                ));
            }
            match v {
                Value::String(s) => bounded("claims", s)?,
                // Integers only: a float (or an integer past 64 bits,
                // which JSON parsing rounds to one) compares inexactly.
                Value::Number(n) if n.is_i64() || n.is_u64() => {}
                Value::Bool(_) => {}
                _ => {
                    return Err(TrustError(
                        "claims",
                        format!("`{k}`: a string, integer or boolean to match exactly"),
                    ));
                }
            }
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            audience: audience.to_owned(),
            claims,
        })
    }

    /// The exact-match claims as stored (`""` for none).
    pub fn claims_text(&self) -> String {
        if self.claims.is_empty() {
            String::new()
        } else {
            Value::Object(self.claims.clone()).to_string()
        }
    }
}

/// Does a token's claims set (`token`, verified) hold every claim of the
/// stored `claims` (`""`: none) with exactly its value (a name starting
/// with `/` is a JSON Pointer)? A stored text that no longer parses
/// matches nothing.
pub fn claims_match(claims: &str, token: &Value) -> bool {
    if claims.is_empty() {
        return true;
    }
    let Ok(Value::Object(want)) = serde_json::from_str::<Value>(claims) else {
        return false;
    };
    want.iter().all(|(k, v)| {
        let got = if k.starts_with('/') {
            token.pointer(k)
        } else {
            token.get(k)
        };
        got == Some(v)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    const GH: &str = "https://token.actions.githubusercontent.com";

    fn trust(claims: Value) -> Result<FederatedTrust, TrustError> {
        FederatedTrust::new(
            GH,
            "repo:acme/app:ref:refs/heads/main",
            "https://warden.example",
            Some(&claims),
            false,
        )
    }

    #[test]
    fn issuers_are_https_urls_without_extras() {
        assert!(validate_issuer(GH, false).is_ok());
        assert!(validate_issuer("https://gitlab.example.com/", false).is_ok());
        for bad in [
            "http://issuer.example",
            "ftp://issuer.example",
            "issuer.example",
            "https://user:pw@issuer.example",
            "https://issuer.example/?a=b",
            "https://issuer.example/#x",
            "",
            "https://127.0.0.1",
            "https://[::1]:8443",
            "https://169.254.169.254",
            "https://[fe80::1]",
        ] {
            assert!(validate_issuer(bad, false).is_err(), "{bad}");
        }
        assert!(validate_issuer("https://169.254.169.254", true).is_err());
        assert!(validate_issuer("http://127.0.0.1:8080", true).is_ok());
    }

    #[test]
    fn claims_are_scalars_not_reserved() {
        let t = trust(json!({"repository_id": "123", "run_attempt": 1, "x": true})).unwrap();
        assert_eq!(t.claims.len(), 3);
        assert!(trust(json!({"/kubernetes.io/serviceaccount/uid": "u-1"})).is_ok());
        for bad in [
            json!({"sub": "x"}),
            json!({"/sub": "x"}),
            json!({"/": "x"}),
            json!({"aud": "x"}),
            json!({"nested": {"a": 1}}),
            json!({"list": ["a"]}),
            json!({"float": 1.5}),
            serde_json::from_str::<Value>(r#"{"huge": 12345678901234567890123}"#).unwrap(),
            json!({"empty": null}),
            json!([1]),
            json!("x"),
        ] {
            assert!(trust(bad.clone()).is_err(), "{bad}");
        }
        let many: Map<String, Value> = (0..17).map(|i| (format!("c{i}"), json!("v"))).collect();
        assert!(trust(Value::Object(many)).is_err());
    }

    #[test]
    fn claims_match_exactly() {
        let t = trust(json!({"repository_id": "123", "run_attempt": 1})).unwrap();
        let stored = t.claims_text();
        let token = |v: Value| v;
        assert!(claims_match(
            &stored,
            &token(json!({"repository_id": "123", "run_attempt": 1, "other": "y"}))
        ));
        // A number is not the string of it, and a missing claim fails.
        assert!(!claims_match(
            &stored,
            &token(json!({"repository_id": 123, "run_attempt": 1}))
        ));
        assert!(!claims_match(
            &stored,
            &token(json!({"repository_id": "123"}))
        ));
        assert!(claims_match("", &token(json!({}))));
        // A pointer reaches into nested claims; a dotted name does not.
        let k8s = json!({"kubernetes.io": {"serviceaccount": {"uid": "u-1"}}});
        assert!(claims_match(
            r#"{"/kubernetes.io/serviceaccount/uid": "u-1"}"#,
            &k8s
        ));
        assert!(!claims_match(
            r#"{"/kubernetes.io/serviceaccount/uid": "u-2"}"#,
            &k8s
        ));
        assert!(!claims_match(
            r#"{"kubernetes.io.serviceaccount.uid": "u-1"}"#,
            &k8s
        ));
        assert!(!claims_match("not json", &token(json!({}))));
    }
}
