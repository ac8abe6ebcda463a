//! What differs between the two backends, kept small so that repositories share their SQL.
//!
//! Each repository is one generic implementation over [`Backend`], with a `where` clause that
//! names what its SQL needs of sqlx: an executor for the connection, the parameters it binds
//! ([`Param`]) and the rows it reads (`FromRow`). The repositories are instantiated for
//! [`Sqlite`] and [`Postgres`] where they are wired (`Repositories`), and the compiler checks
//! there that both backends supply all of it. What several repositories write in one
//! transaction (an audit event, a care-team membership, notifications) is a trait with one
//! implementation for every backend that supplies its bounds, so that its callers name the
//! trait rather than repeat them; where the SQL differs between the backends, the trait has
//! one implementation per backend instead.
//!
//! The only macros left are those that share a column list between queries: each expands to a
//! string literal and nothing else, because `concat!`, which builds each query as one
//! `&'static str` at compile time (what sqlx takes without `AssertSqlSafe`), takes only
//! literals, not constants.

use std::future::Future;

use sqlx::database::HasStatementCache;
use sqlx::postgres::PgQueryResult;
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{Database, Encode, IntoArguments, Pool, Postgres, Sqlite, Transaction, Type};

use carehub_domain::kernel::RepositoryError;

/// Per-backend details the shared repository code needs.
pub(crate) trait Backend:
    Database<Arguments: IntoArguments<Self>, QueryResult: RowsAffected> + HasStatementCache
{
    /// Starts a transaction that will write. SQLite takes the write lock up front, so two
    /// writers queue on the busy timeout instead of failing when a read lock cannot upgrade.
    const BEGIN_WRITE: &'static str;

    /// Starts a transaction that will write, with [`BEGIN_WRITE`](Self::BEGIN_WRITE).
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send {
        pool.begin_with(Self::BEGIN_WRITE)
    }
}

impl Backend for Sqlite {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
}

impl Backend for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
}

/// How many rows a statement changed, which each backend reports with a method of its own.
pub(crate) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for PgQueryResult {
    fn rows_affected(&self) -> u64 {
        PgQueryResult::rows_affected(self)
    }
}

/// A value `DB` can bind as a query parameter while it is borrowed for `'a`. Repositories
/// bound `for<'a> T: Param<'a, DB>`, so that one bound covers borrowed values (`&str`,
/// `Option<&Uuid>`) as well as owned ones.
pub(crate) trait Param<'a, DB: Database>: Encode<'a, DB> + Type<DB> {}

impl<'a, DB: Database, T: Encode<'a, DB> + Type<DB>> Param<'a, DB> for T {}

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
