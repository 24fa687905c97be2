//! One resource, one name: the comparison key of an audience URI (RFC
//! 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalization).
//!
//! Clients spell one resource several ways: the MCP TypeScript SDK sends
//! `resource` as a parsed URL's `href`, so `https://api.example.com` arrives
//! as `https://api.example.com/`; others write `HTTPS://API.example.com:443`.
//! Every place that matches a requested resource, a token's `aud` or an
//! account's `allowed_resources` against a registered audience compares
//! these keys; what a token carries is always the registered spelling.

/// The comparison key of `uri`: for `http` and `https`, scheme and host in
/// lower case, the default port dropped, an empty path as `/`, dot segments
/// removed, percent-encodings in upper case and unreserved characters
/// decoded; for other schemes (`urn`), the scheme (and a URN's namespace
/// id) in lower case and percent-encodings in upper case. Two audiences are
/// one resource exactly when their keys are equal. Meant for URIs that
/// `resource_server::validate_audience` accepts; anything else is returned
/// with only its case-insensitive parts lowered, which never makes two
/// different valid URIs equal.
pub fn audience_key(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return uri.to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "http" | "https" if rest.starts_with("//") => {
            web_key(&scheme, &rest[2..], if scheme == "http" { 80 } else { 443 })
        }
        "urn" => {
            let (nid, nss) = rest.split_once(':').unwrap_or((rest, ""));
            let sep = if rest.contains(':') { ":" } else { "" };
            format!(
                "urn:{}{sep}{}",
                nid.to_ascii_lowercase(),
                percent_case(nss, false)
            )
        }
        _ => format!("{scheme}:{}", percent_case(rest, false)),
    }
}

/// Are `a` and `b` one resource?
pub fn same_resource(a: &str, b: &str) -> bool {
    a == b || audience_key(a) == audience_key(b)
}

fn web_key(scheme: &str, hier: &str, default_port: u16) -> String {
    let end = hier.find(['/', '?', '#']).unwrap_or(hier.len());
    let (authority, tail) = hier.split_at(end);
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    // The port follows the last colon outside an IPv6 literal.
    let port_at = match hostport.rfind(']') {
        Some(close) => hostport[close..].find(':').map(|i| close + i),
        None => hostport.rfind(':'),
    };
    let (host, port) = match port_at {
        Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
        None => (hostport, None),
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n == default_port => None,
            Ok(n) => Some(n.to_string()),
            Err(_) => Some(p.to_owned()),
        },
    };
    let mut out = format!("{scheme}://");
    if let Some(u) = userinfo {
        out.push_str(&percent_case(u, true));
        out.push('@');
    }
    out.push_str(&percent_case(host, true).to_ascii_lowercase());
    if let Some(p) = port {
        out.push(':');
        out.push_str(&p);
    }
    let path = percent_case(path, true);
    if path.is_empty() {
        out.push('/');
    } else {
        out.push_str(&remove_dot_segments(&path));
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(&percent_case(q, true));
    }
    out
}

/// Percent-encodings with upper-case hex digits (§6.2.2.1); with `decode`,
/// those of unreserved characters decoded (§6.2.2.2).
fn percent_case(s: &str, decode: bool) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let byte = (h * 16 + l) as u8;
            if decode && (byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)) {
                out.push(byte as char);
            } else {
                out.push('%');
                out.push((b[i + 1] as char).to_ascii_uppercase());
                out.push((b[i + 2] as char).to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        // Not a triplet: copied as it is (a whole UTF-8 sequence at a time).
        let len = s[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&s[i..i + len]);
        i += len;
    }
    out
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    if !path.split('/').any(|seg| seg == "." || seg == "..") {
        return path.to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if path.starts_with('/') && !joined.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_resource_many_spellings() {
        let key = "https://api.example.com/";
        for s in [
            "https://api.example.com",
            "https://api.example.com/",
            "HTTPS://API.Example.COM",
            "https://api.example.com:443",
            "https://api.example.com:443/",
            "https://api.example.com:/",
            "https://api.example.com/./",
            "https://api.example.com/a/../",
        ] {
            assert_eq!(audience_key(s), key, "{s}");
        }
        assert_eq!(audience_key("http://localhost:80"), "http://localhost/");
        assert_eq!(
            audience_key("http://localhost:8080"),
            "http://localhost:8080/"
        );
        assert_eq!(audience_key("http://[::1]:80/mcp"), "http://[::1]/mcp");
        assert_eq!(audience_key("http://[::1]:9000"), "http://[::1]:9000/");
        assert_eq!(
            audience_key("https://a.example/%7euser/%2f"),
            "https://a.example/~user/%2F"
        );
        assert_eq!(audience_key("URN:Example:API"), "urn:example:API");
        assert_eq!(audience_key("urn:example:a%2fb"), "urn:example:a%2Fb");
    }

    #[test]
    fn different_resources_stay_different() {
        for (a, b) in [
            (
                "https://api.example.com/mcp",
                "https://api.example.com/mcp/",
            ),
            ("https://api.example.com", "http://api.example.com"),
            ("https://api.example.com", "https://api.example.com:8443"),
            ("http://api.example.com", "http://api.example.com:443"),
            ("https://api.example.com/A", "https://api.example.com/a"),
            (
                "https://api.example.com/?x=1",
                "https://api.example.com/?X=1",
            ),
            ("urn:example:API", "urn:example:api"),
            ("https://u@api.example.com", "https://U@api.example.com"),
        ] {
            assert!(!same_resource(a, b), "{a} {b}");
        }
        assert!(same_resource(
            "https://api.example.com",
            "https://API.example.com/"
        ));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "",
            ":",
            "https:",
            "https://",
            "https://%",
            "https://a/%4",
            "https://a/%zz",
            "https://[::1",
            "https://a:99999",
            "urn:",
            "x:%e2%82%ac",
            "https://é/ü/..",
        ] {
            let _ = audience_key(s);
        }
    }
}
