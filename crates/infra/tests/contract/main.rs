//! The repository contract: every port's documented behaviour, on SQLite and on PostgreSQL.
//! One file per port; `fixtures` holds what the contracts of several ports build on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Runs each named test on a scratch database of its own, on each backend: `sqlite::name` and
/// `postgres::name`, handed the database's `Repositories`. With `database:`, each test is
/// handed the connected `&Database` itself (in `sqlite_database` and `postgres_database`);
/// with `postgres_instances:`, an unconnected PostgreSQL `&ScratchDatabase`, on which it can
/// open several pools as several server instances would (in `postgres_instances`).
/// PostgreSQL tests are skipped when `CAREHUB_TEST_POSTGRES_URL` is unset (except under CI).
macro_rules! contract {
    (database: $($name:ident),* $(,)?) => {
        contract!(@module sqlite_database, Sqlite, database, $($name),*);
        contract!(@module postgres_database, Postgres, database, $($name),*);
    };
    (postgres_instances: $($name:ident),* $(,)?) => {
        contract!(@module postgres_instances, Postgres, scratch, $($name),*);
    };
    (@module $module:ident, $backend:ident, $input:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(scratch) = carehub_infra::testing::ScratchDatabase::create(
                        carehub_infra::testing::Backend::$backend,
                    )
                    .await
                    else {
                        return;
                    };
                    contract!(@run $input, super::$name, scratch);
                    drop(scratch);
                }
            )*
        }
    };
    (@run scratch, $test:path, $scratch:ident) => {
        $test(&$scratch).await
    };
    (@run $input:ident, $test:path, $scratch:ident) => {{
        let database = $scratch
            .connect_migrated()
            .await
            .expect("the scratch database connects and migrates");
        contract!(@hand $input, $test, database);
        database.close().await;
    }};
    (@hand repositories, $test:path, $database:ident) => {
        $test($database.repositories()).await
    };
    (@hand database, $test:path, $database:ident) => {
        $test(&$database).await
    };
    ($($name:ident),* $(,)?) => {
        contract!(@module sqlite, Sqlite, repositories, $($name),*);
        contract!(@module postgres, Postgres, repositories, $($name),*);
    };
}

mod fixtures;

mod appointments;
mod audit;
mod calls;
mod care_teams;
mod email_preferences;
mod emergency_accesses;
mod feedback;
mod jobs;
mod lab;
mod login_attempts;
mod medical;
mod messages;
mod notes;
mod notifications;
mod patients;
mod prescriptions;
mod realtime;
mod referrals;
mod refresh_tokens;
mod relay;
mod reports;
mod revoked_tokens;
mod schedules;
mod signing_keys;
mod socket_tickets;
mod trusted_devices;
mod users;
