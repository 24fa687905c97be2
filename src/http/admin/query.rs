//! Query strings of the admin API's GET endpoints: each parameter at most
//! once, no control characters, unknown parameters refused, and the
//! paging pair (`limit`, `cursor`) read the same way by every list.
use super::ApiError;

/// A query string's parameters; a repeated one is refused.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k.chars().chain(v.chars()).any(char::is_control) {
            return Err(ApiError::BadRequest(format!(
                "query parameter `{}` holds a control character",
                printable(&k)
            )));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(ApiError::BadRequest(format!(
                "query parameter `{}` is repeated",
                printable(&k)
            )));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

/// The answer to a query parameter this endpoint does not know.
pub fn unknown_param(name: &str) -> ApiError {
    ApiError::BadRequest(format!("unknown query parameter `{}`", printable(name)))
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(40).collect()
}

/// An integer parameter within `range`, else 422 naming it.
pub fn int_param(
    name: &str,
    v: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ApiError> {
    match v.parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(
            name,
            &format!(
                "must be an integer from {} to {}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// Parses a list endpoint's query string, in order: `limit` (1 to `max`,
/// default `default`) here, every other parameter (the list's filters and
/// its `cursor`) by `param`, which answers `Ok(false)` for a name it does
/// not know. Returns the limit.
pub fn list_query(
    raw: Option<&str>,
    default: i64,
    max: i64,
    mut param: impl FnMut(&str, String) -> Result<bool, ApiError>,
) -> Result<i64, ApiError> {
    let mut limit = default;
    for (k, v) in query_pairs(raw)? {
        match k.as_str() {
            "limit" => limit = int_param("limit", &v, 1..=max)?,
            name => {
                if !param(name, v)? {
                    return Err(unknown_param(name));
                }
            }
        }
    }
    Ok(limit)
}

/// The next page's cursor: the last item's key, when the page is full.
pub fn next_cursor<T>(items: &[T], limit: i64, key: impl Fn(&T) -> String) -> Option<String> {
    (items.len() as i64 == limit)
        .then(|| items.last().map(key))
        .flatten()
}

/// The answer to a cursor this API did not hand out.
pub fn bad_cursor() -> ApiError {
    ApiError::invalid("cursor", "is not a cursor this API returned")
}
