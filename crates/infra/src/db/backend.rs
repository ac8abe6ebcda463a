//! What differs between the two backends, kept small so that repositories share their SQL.

use sqlx::{Postgres, Sqlite};

use carehub_domain::kernel::RepositoryError;

/// Per-backend details the shared repository code needs.
pub(crate) trait Backend: sqlx::Database {
    /// Starts a transaction that will write. SQLite takes the write lock up front, so two
    /// writers queue on the busy timeout instead of failing when a read lock cannot upgrade.
    const BEGIN_WRITE: &'static str;
}

impl Backend for Sqlite {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
}

impl Backend for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
}

/// A constraint by its PostgreSQL name and by the `table.column` list SQLite reports for it
/// (SQLite does not report constraint names).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Constraint {
    pub name: &'static str,
    pub sqlite_columns: &'static str,
}

impl Constraint {
    /// Whether `error` is a violation of this constraint, on either backend.
    pub fn violated_by(&self, error: &sqlx::Error) -> bool {
        let Some(db_error) = error.as_database_error() else {
            return false;
        };
        match db_error.constraint() {
            Some(name) => name == self.name,
            None => {
                db_error.is_unique_violation()
                    && db_error
                        .message()
                        .strip_prefix("UNIQUE constraint failed: ")
                        .is_some_and(|columns| columns == self.sqlite_columns)
            }
        }
    }
}

/// A storage failure, keeping sqlx's error as the cause.
pub(crate) fn storage(error: sqlx::Error) -> RepositoryError {
    RepositoryError::new(error)
}

/// A person's name read through a join with `users`; `None` when the account is gone.
pub(crate) fn joined_name(
    raw: Option<&str>,
) -> Result<Option<carehub_domain::identity::FullName>, RepositoryError> {
    raw.map(carehub_domain::identity::FullName::parse)
        .transpose()
        .map_err(|e| corrupt("users", e))
}

/// A row that no longer satisfies the domain's rules.
pub(crate) fn corrupt(table: &str, error: impl std::fmt::Display) -> RepositoryError {
    RepositoryError::new(format!("corrupt {table} row: {error}"))
}
