//! A write that names roles (an account's, a person's) checks, inside its
//! transaction and under the roles lock every role write takes, that they
//! still exist: no one can come to hold a role deleted meanwhile.

/// Inside an account's or a person's write's transaction: takes the roles lock (as role
/// writes do), then checks that every stored role in `$roles` (space
/// separated, built-in ones skipped) still exists for the account's org
/// (`$org_sql`, a subquery or parameter giving it, bound to `$org`).
/// Evaluates to `Err(DbError::Conflict)` naming one that does not, so an
/// account can never come to name a role deleted while the request was in
/// flight.
macro_rules! check_roles_exist {
    ($tx:expr, $org:expr, $org_sql:literal, $roles:expr) => {{
        let stored: Vec<&str> = $roles
            .iter()
            .map(|r: &String| r.as_str())
            .filter(|r| $crate::domain::roles::builtin_permissions(r).is_none())
            .collect();
        if stored.is_empty() {
            Ok(())
        } else {
            sqlx::query("UPDATE write_locks SET name = name WHERE name = 'roles'")
                .execute(&mut *$tx)
                .await?;
            let found: Vec<(String,)> = sqlx::query_as(concat!(
                "SELECT id FROM global_roles WHERE (' ' || $2 || ' ') LIKE ('% ' || id || ' %') \
                 UNION ALL SELECT id FROM roles WHERE org_id = ",
                $org_sql,
                " AND (' ' || $2 || ' ') LIKE ('% ' || id || ' %')"
            ))
            .bind($org)
            .bind(stored.join(" "))
            .fetch_all(&mut *$tx)
            .await?;
            match stored.iter().find(|r| !found.iter().any(|(f,)| f == *r)) {
                Some(gone) => Err($crate::db::DbError::Conflict(format!(
                    "role `{gone}` was deleted while this request was in flight"
                ))),
                None => Ok(()),
            }
        }
    }};
}
pub(crate) use check_roles_exist;
