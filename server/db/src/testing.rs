//! Throwaway databases for tests (feature `test-support`): every test gets its own SQLite file or
//! its own Postgres database, dropped when the [`TestDatabase`] is dropped.
//!
//! Postgres is required unless `ASYNC_CODER_POSTGRES_TESTS=skip` is set: an unreachable Postgres
//! fails the test instead of silently passing. The README's test command sets `skip` only outside
//! CI, after saying loudly that the Postgres suite will not run.
#![allow(clippy::expect_used, clippy::panic)]

use sea_orm::{ConnectionTrait, Database as SeaDatabase};

use crate::{Backend, Database};

/// Where the Postgres test databases are created; must allow `CREATE DATABASE`.
pub const POSTGRES_ADMIN_URL_VARIABLE: &str = "ASYNC_CODER_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// `require` (default) or `skip`.
pub const POSTGRES_TESTS_VARIABLE: &str = "ASYNC_CODER_POSTGRES_TESTS";

/// The backends a test should run on: SQLite always, Postgres unless explicitly skipped.
pub fn backends() -> Vec<Backend> {
    let skip = std::env::var(POSTGRES_TESTS_VARIABLE).is_ok_and(|value| value == "skip");
    if skip {
        eprintln!("NOTE: {POSTGRES_TESTS_VARIABLE}=skip: this test ran on SQLite only");
        vec![Backend::Sqlite]
    } else {
        vec![Backend::Sqlite, Backend::Postgres]
    }
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub database: Database,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh, fully migrated database on `backend`.
    pub async fn migrated(backend: Backend) -> Self {
        let test_database = Self::empty(backend).await;
        test_database
            .database
            .migrate()
            .await
            .expect("migrating the test database");
        test_database
    }

    /// A fresh database with no tables at all.
    pub async fn empty(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let folder = tempfile::tempdir().expect("creating a temporary folder");
                let url = crate::sqlite_url_in(folder.path());
                let database = Database::connect(&url)
                    .await
                    .expect("opening the SQLite test database");
                Self {
                    database,
                    url,
                    cleanup: Cleanup::Sqlite(folder),
                }
            }
            Backend::Postgres => {
                let admin_url = std::env::var(POSTGRES_ADMIN_URL_VARIABLE)
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_ADMIN_URL.to_owned());
                let name = format!("async_coder_test_{}", uuid::Uuid::new_v4().simple());
                let admin = SeaDatabase::connect(&admin_url).await.unwrap_or_else(|error| {
                    panic!(
                        "Postgres is not reachable at {admin_url} ({error}). Start it, point \
                         {POSTGRES_ADMIN_URL_VARIABLE} at one, or set {POSTGRES_TESTS_VARIABLE}=skip \
                         to run the SQLite half only."
                    )
                });
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("creating the Postgres test database");
                admin.close().await.expect("closing the admin connection");
                let url = replace_database_name(&admin_url, &name);
                let database = Database::connect(&url)
                    .await
                    .expect("connecting to the Postgres test database");
                Self {
                    database,
                    url,
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
        }
    }

    /// Drops the Postgres database now (its open connections are ended); a no-op on SQLite.
    /// Used to test what the server does when its database goes away.
    pub async fn drop_postgres_database(&self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            drop_database(admin_url, name).await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let admin_url = admin_url.clone();
            let name = name.clone();
            // Drop runs inside the test's runtime: do the async clean-up on a runtime of its own.
            let joined = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building a runtime for the clean-up");
                runtime.block_on(drop_database(&admin_url, &name));
            })
            .join();
            if joined.is_err() {
                eprintln!("warning: dropping a Postgres test database failed");
            }
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    let admin = SeaDatabase::connect(admin_url)
        .await
        .expect("connecting to Postgres to drop a test database");
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .expect("dropping the Postgres test database");
    admin.close().await.expect("closing the admin connection");
}

/// `postgres://user@host:port/old?x` with the database name replaced.
fn replace_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|scheme_end| scheme_end + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    let mut result = format!("{}/{}", &base[..authority_end], name);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

/// A project of `owner` named `name` holding one text file at `path`, saved by the owner now.
pub async fn project_with_file(
    database: &Database,
    owner: crate::ids::UserId,
    name: &str,
    path: &str,
    text: &str,
) -> crate::ids::ProjectId {
    let now = chrono::Utc::now();
    let project = database
        .create_project(
            owner,
            crate::ProjectFields {
                name: name.into(),
                description: None,
                repository_url: None,
            },
            now,
            None,
        )
        .await
        .expect("the project is created");
    database
        .create_file(
            project.id,
            path,
            crate::FileBody::Text(text.into()),
            None,
            crate::Authorship {
                author: Some(owner),
                source: crate::tables::file_revisions::RevisionSource::User,
            },
            now,
        )
        .await
        .expect("the file is saved")
        .expect("the path is new");
    project.id
}

#[cfg(test)]
mod tests {
    use super::replace_database_name;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            replace_database_name("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            replace_database_name("postgres://u@h", "t1"),
            "postgres://u@h/t1"
        );
        assert_eq!(
            replace_database_name("postgres://u@h/x?sslmode=disable", "t1"),
            "postgres://u@h/t1?sslmode=disable"
        );
    }
}
