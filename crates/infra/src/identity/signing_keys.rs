//! The ring of token signing keys, on SQLite and PostgreSQL.

use async_trait::async_trait;
use sqlx::{Executor, FromRow, Pool};

use carehub_domain::identity::{AddedKey, KeyId, PrivateKeyPem, RingKey, SigningKeyRepository};
use carehub_domain::kernel::RepositoryError;

use crate::db::backend::{Backend, Param, RowsAffected as _, corrupt, storage};
use crate::db::sql_time::DbTime;

/// How many times an add tries again after a concurrent add took the position it meant to
/// take. Each round one of the competing writers wins, so this bounds how many rotations may
/// race, far beyond any operator's.
const ADD_ATTEMPTS: usize = 32;

/// The keys in `signing_keys`, ordered by `position`.
#[derive(Debug, Clone)]
pub struct SqlSigningKeyRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlSigningKeyRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    private_key_pem: String,
    created_at: DbTime,
}

impl TryFrom<KeyRow> for RingKey {
    type Error = RepositoryError;

    fn try_from(row: KeyRow) -> Result<Self, RepositoryError> {
        Ok(Self {
            kid: KeyId::parse(&row.kid).map_err(|e| corrupt("signing_keys", e))?,
            private_key: PrivateKeyPem::new(row.private_key_pem),
            created_at: row.created_at.0,
        })
    }
}

#[async_trait]
impl<DB> SigningKeyRepository for SqlSigningKeyRepository<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> KeyRow: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    async fn add(&self, key: &RingKey) -> Result<AddedKey, RepositoryError> {
        for _ in 0..ADD_ATTEMPTS {
            // One statement reads the highest position and takes the next. Of writers that
            // read the same one, the unique position lets one in; the others insert nothing.
            // (`WHERE true` lets SQLite tell the upsert clause from a join's `ON`.)
            let added = sqlx::query(
                "INSERT INTO signing_keys (kid, position, private_key_pem, created_at) \
                 SELECT $1, COALESCE(MAX(position), 0) + 1, $2, $3 FROM signing_keys WHERE true \
                 ON CONFLICT DO NOTHING",
            )
            .bind(key.kid.as_str())
            .bind(key.private_key.expose())
            .bind(DbTime(key.created_at))
            .execute(&self.pool)
            .await
            .map_err(storage)?;
            if added.rows_affected() == 1 {
                return Ok(AddedKey::Added);
            }
            let present: Option<(i64,)> =
                sqlx::query_as("SELECT position FROM signing_keys WHERE kid = $1")
                    .bind(key.kid.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(storage)?;
            if present.is_some() {
                return Ok(AddedKey::AlreadyInRing);
            }
        }
        Err(RepositoryError::new(format!(
            "the key could not take a place in the ring in {ADD_ATTEMPTS} attempts"
        )))
    }

    async fn seed(&self, key: &RingKey) -> Result<bool, RepositoryError> {
        // Position 1 is the first key's: of concurrent seeds of an empty ring, one takes it.
        let seeded = sqlx::query(
            "INSERT INTO signing_keys (kid, position, private_key_pem, created_at) \
             SELECT $1, 1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM signing_keys) \
             ON CONFLICT DO NOTHING",
        )
        .bind(key.kid.as_str())
        .bind(key.private_key.expose())
        .bind(DbTime(key.created_at))
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(seeded.rows_affected() == 1)
    }

    async fn list(&self) -> Result<Vec<RingKey>, RepositoryError> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, private_key_pem, created_at FROM signing_keys ORDER BY position",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        rows.into_iter().map(RingKey::try_from).collect()
    }
}
