//! `oauth::assertion`'s unit tests.
#![allow(clippy::unwrap_used)]
use serde_json::{Value, json};

use super::*;

const ISS: &str = "https://warden.example";
const NOW: i64 = 1_800_000_000;

fn claims(patch: Value) -> AssertionClaims {
    let mut base = json!({"iss": "arm_sa_x", "sub": "arm_sa_x", "aud": ISS,
                          "exp": NOW + 300, "iat": NOW, "jti": "j1"});
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    serde_json::from_value(base).unwrap()
}

fn check_as(patch: Value, client_id: Option<&str>, strict: bool) -> Result<String, Refusal> {
    let token_endpoint = format!("{ISS}/oauth/token");
    let c = claims(patch);
    let audiences = AssertionAudience {
        issuer: ISS,
        endpoints: &[&token_endpoint],
        strict,
    };
    check_claims(&c, client_id, &audiences, NOW).map(str::to_owned)
}

fn check(patch: Value, client_id: Option<&str>) -> Result<String, Refusal> {
    check_as(patch, client_id, false)
}

#[test]
fn a_good_assertion_passes_with_its_jti() {
    assert_eq!(check(json!({}), None).unwrap(), "j1");
    assert_eq!(check(json!({}), Some("arm_sa_x")).unwrap(), "j1");
    let endpoint = format!("{ISS}/oauth/token");
    for aud in [
        json!(endpoint),
        json!([ISS]),
        json!([ISS, endpoint]),
        json!([endpoint]),
    ] {
        assert!(check(json!({ "aud": aud }), None).is_ok(), "{aud}");
    }
    // authlib's hour, and the leeway on either side.
    assert!(check(json!({"exp": NOW + 3600}), None).is_ok());
    assert!(check(json!({"exp": NOW - 10, "iat": NOW + 10}), None).is_ok());
}

#[test]
fn each_rule_refuses() {
    for (patch, client_id) in [
        (json!({"iss": "arm_sa_y"}), None),
        (json!({}), Some("arm_sa_y")),
        (json!({"aud": "https://other"}), None),
        (json!({"aud": format!("{ISS}/oauth/introspect")}), None),
        // One foreign value beside warden's own: the audience injection.
        (json!({"aud": ["https://other", ISS]}), None),
        (
            json!({"aud": [format!("{ISS}/oauth/token"), "https://other"]}),
            None,
        ),
        (json!({"aud": []}), None),
        (json!({"aud": format!("{ISS}/")}), None),
        (json!({"exp": NOW - 31}), None),
        (json!({"exp": NOW + 3600 + 31}), None),
        (json!({"nbf": NOW + 31}), None),
        (json!({"iat": NOW + 31}), None),
        (json!({"jti": null}), None),
        (json!({"jti": ""}), None),
        (json!({"jti": "j".repeat(257)}), None),
    ] {
        assert!(
            check(patch.clone(), client_id).is_err(),
            "{patch} {client_id:?}"
        );
    }
}

#[test]
fn strict_takes_the_issuer_alone() {
    assert!(check_as(json!({}), None, true).is_ok());
    assert!(check_as(json!({"aud": [ISS]}), None, true).is_ok());
    for aud in [
        json!(format!("{ISS}/oauth/token")),
        json!([ISS, format!("{ISS}/oauth/token")]),
        json!([]),
    ] {
        assert!(
            check_as(json!({ "aud": aud }), None, true).is_err(),
            "{aud}"
        );
    }
}

#[test]
fn only_client_assertion_types() {
    for ok in [
        None,
        Some("JWT"),
        Some("jwt"),
        Some("client-authentication+jwt"),
        Some("application/client-authentication+jwt"),
    ] {
        assert!(typ_allowed(ok), "{ok:?}");
    }
    for bad in [
        Some("at+jwt"),
        Some("application/at+jwt"),
        Some("dpop+jwt"),
        Some(""),
    ] {
        assert!(!typ_allowed(bad), "{bad:?}");
    }
}

#[test]
fn dates_may_have_a_fraction() {
    let c = claims(json!({"exp": NOW as f64 + 300.5, "iat": NOW as f64 - 0.25}));
    assert_eq!((c.exp, c.iat), (NOW + 300, Some(NOW - 1)));
    assert!(check(json!({"exp": NOW as f64 + 300.5}), None).is_ok());
    let huge = claims(json!({"exp": 1e300}));
    assert_eq!(huge.exp, i64::MAX);
    assert!(check(json!({"exp": 1e300}), None).is_err());
}

#[test]
fn exp_is_required() {
    let v = json!({"iss": "a", "sub": "a", "aud": ISS, "jti": "j"});
    assert!(serde_json::from_value::<AssertionClaims>(v).is_err());
}
