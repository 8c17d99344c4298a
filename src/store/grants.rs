//! The read-only database role Grafana's dashboards use (`manifold grants grafana ROLE`).
//!
//! Two parts, because two different roles must run them: creating a role needs CREATEROLE,
//! which the application role does not have; granting on manifold's views needs their owner,
//! which is the application role.

use tokio_postgres::Client;

use super::StoreError;

const ROLE_SQL: &str = include_str!("sql/grafana_role.sql");
const GRANTS_SQL: &str = include_str!("sql/grafana_grants.sql");

/// The views the dashboards read; the role is granted SELECT on these and nothing else.
pub const GRAFANA_VIEWS: [&str; 5] = ["grafana_series", "grafana_sensor_1m", "grafana_readings", "grafana_scores", "grafana_dead_letters"];

/// A role name safe to put in SQL unquoted-or-quoted alike: lowercase letters, digits and `_`,
/// not starting with a digit or `pg_`, at most 63 bytes (PostgreSQL's identifier limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(name: &str) -> Result<Self, String> {
        let valid_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if name.is_empty() || name.len() > 63 {
            return Err(format!("ROLE must be 1 to 63 characters, got {}", name.len()));
        }
        if !valid_chars || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("ROLE {name:?} must be lowercase letters, digits and _, not starting with a digit"));
        }
        if name.starts_with("pg_") {
            return Err(format!("ROLE {name:?}: names starting with pg_ are reserved by PostgreSQL"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The statements that create the role (run by a role with CREATEROLE). With `login`, the role
/// may log in with `password`; `None` leaves psql's `:'grafana_password'` variable in its place,
/// so printed SQL never holds a secret.
pub fn role_sql(role: &RoleName, login: bool, password: Option<&str>) -> String {
    let mut sql = ROLE_SQL.replace("{role}", role.as_str());
    if login {
        let secret = password.map_or_else(|| ":'grafana_password'".to_owned(), quote_literal);
        sql.push_str(&format!("ALTER ROLE \"{}\" WITH LOGIN PASSWORD {secret};\n", role.as_str()));
    }
    sql
}

/// The grants on the dashboards' views (run by their owner, the application role).
pub fn grants_sql(role: &RoleName) -> String {
    GRANTS_SQL.replace("{role}", role.as_str())
}

/// A SQL string literal that means the same whatever `standard_conforming_strings` says: an
/// escape string with both backslashes and quotes doubled, so no password can end it early.
fn quote_literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Runs one part on `client`, in a transaction, so a failing statement leaves nothing half done.
pub async fn execute(client: &mut Client, sql: &str, context: &'static str) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(|e| StoreError::query(context, e))?;
    tx.batch_execute(sql).await.map_err(|e| StoreError::query(context, e))?;
    tx.commit().await.map_err(|e| StoreError::query(context, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_that_could_break_out_of_sql_are_refused_with_the_field_named() {
        for bad in ["", "Grafana", "grafana-ro", "1ro", "ro\"; DROP TABLE users; --", "pg_grafana", &"r".repeat(64)] {
            let err = RoleName::parse(bad).unwrap_err();
            assert!(err.starts_with("ROLE"), "{bad:?}: {err}");
        }
        assert_eq!(RoleName::parse("grafana_ro").unwrap().as_str(), "grafana_ro");
    }

    #[test]
    fn printed_sql_grants_the_dashboard_views_only_and_holds_no_password() {
        let role = RoleName::parse("grafana_ro").unwrap();
        let grants = grants_sql(&role);
        for view in GRAFANA_VIEWS {
            assert!(grants.contains(view), "{view} is not granted");
        }
        let granted: Vec<&str> = grants.lines().filter(|l| l.starts_with("GRANT SELECT")).collect();
        assert_eq!(granted, ["GRANT SELECT ON grafana_series, grafana_sensor_1m, grafana_readings, grafana_scores, grafana_dead_letters TO \"grafana_ro\";"]);
        let printed = role_sql(&role, true, None);
        assert!(printed.contains("NOLOGIN") && printed.contains("WITH LOGIN PASSWORD :'grafana_password';"), "{printed}");
        assert!(role_sql(&role, true, Some("it's")).contains("PASSWORD E'it''s';"));
        // A backslash cannot escape the closing quote, whatever standard_conforming_strings says.
        assert!(role_sql(&role, true, Some(r"x\'; DROP ROLE x; --")).contains(r"PASSWORD E'x\\''; DROP ROLE x; --';"));
        assert!(!role_sql(&role, false, None).contains("LOGIN PASSWORD"));
    }
}
