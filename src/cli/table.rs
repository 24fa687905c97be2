//! The CLI's human output, as users of kubectl and gh expect it: lists as
//! tables with a header row and columns as wide as their widest cell;
//! objects as aligned `key value` lines; state changes as one line. JSON
//! output (`--json`) never changes shape.
use serde_json::Value;

/// A cell as printed: control characters (a newline in a description an
/// org admin wrote) escaped, so no value can forge a line of its own.
fn plain(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .flat_map(|c| {
            let v: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            v
        })
        .collect()
}

/// Prints a table: the header, then each row, every column but the last
/// padded to its widest cell, two spaces apart.
pub(super) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", render(header, rows));
}

fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| plain(c)).collect())
        .collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(c);
            } else {
                let pad = width[i] - c.chars().count();
                out.push_str(c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Prints an object as JSON or `key value` lines, adding the one-time
/// secret when there is one.
pub(super) fn print_object(
    mut out: Value,
    secret: Option<&crate::domain::credentials::ClientSecret>,
    json_out: bool,
) {
    if let (Some(s), Some(m)) = (secret, out.as_object_mut()) {
        m.insert("client_secret".into(), s.expose().into());
    }
    if json_out {
        println!("{out}");
    } else if let Some(m) = out.as_object() {
        let pairs: Vec<(String, String)> = m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => "-".into(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect();
        print!("{}", key_values(&pairs));
        if secret.is_some() {
            eprintln!("note: the client secret is shown only once; store it now.");
        }
    }
}

/// `key value` lines, the values in one column.
pub(super) fn key_values(pairs: &[(String, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$}  {}\n", plain(k), plain(v)))
        .collect()
}

/// A timestamp cell: the time, or `-` for none.
pub(super) fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec!["a".to_owned(), "long value".to_owned(), "x".to_owned()],
            vec!["bbbb".to_owned(), "v".to_owned(), "last column".to_owned()],
        ];
        assert_eq!(
            render(&["ID", "VALUE", "NOTE"], &rows),
            "ID    VALUE       NOTE\na     long value  x\nbbbb  v           last column\n"
        );
    }

    #[test]
    fn no_value_forges_a_line() {
        let pairs = vec![(
            "description".to_owned(),
            "ok\nroles  [\"operator\"]".to_owned(),
        )];
        assert_eq!(key_values(&pairs).lines().count(), 1);
        let rows = vec![vec!["a\r\nb".to_owned(), "x".to_owned()]];
        assert_eq!(render(&["A", "B"], &rows).lines().count(), 2);
    }

    #[test]
    fn keys_align_whatever_their_length() {
        let pairs = vec![
            ("allowed_ips".to_owned(), "-".to_owned()),
            ("allowed_resources".to_owned(), "[]".to_owned()),
        ];
        assert_eq!(
            key_values(&pairs),
            "allowed_ips        -\nallowed_resources  []\n"
        );
    }
}
