//! The CLI's human output, as users of kubectl and gh expect it: lists as
//! tables with a header row and columns as wide as their widest cell;
//! objects as aligned `key value` lines; state changes as one line. JSON
//! output (`--json`) is printed elsewhere and never changes shape.

/// Prints a table: the header, then each row, every column but the last
/// padded to its widest cell, two spaces apart.
pub(super) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", render(header, rows));
}

fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
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
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
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
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
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
