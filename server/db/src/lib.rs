//! Async Coder's persistence layer: the SeaORM entities ([`tables`]), typed ids ([`ids`]) and the
//! [`Database`] handle the rest of the server goes through. It knows nothing of HTTP or Leptos.
//!
//! The same migrations and queries run on SQLite (the embedded default) and on Postgres.

pub mod ids;
pub mod queries;
pub mod tables;
#[cfg(feature = "test-support")]
pub mod testing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, DatabaseConnection, DatabaseTransaction, DbBackend, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

pub use queries::{
    Authorship, ChangeEntry, ConversationEntry, ConversationTotals, FileBody, FileEntry,
    ModeFields, NewAuditEntry, NewCredential, NewMessage, NewUsage, NewUser, ProjectFields,
    RateLimitState, Reservation, RevisionEntry, RunLease, RunListener, RunNotice, RunSignal,
    SaveOutcome, Tree, TreeConflict, UsageOutcome, UsageTotals,
};
pub use sea_orm;

/// Everything that can go wrong in this crate. The text is for logs, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported database URL (expected sqlite://... or postgres://...): {0}")]
    UnsupportedUrl(String),
    #[error("cannot create the database folder {path}: {source}")]
    CreateFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sea_orm::DbErr),
    #[error("migrating the database failed: {0}")]
    Migrate(#[source] sea_orm::DbErr),
    #[error("an account with this email exists already")]
    EmailTaken,
    /// The owner has `limit` projects already; nothing was created.
    #[error("the owner has {limit} projects already")]
    ProjectLimit { limit: u64 },
    /// The run's lease is no longer this instance's (another claimed it, it was released or
    /// the run ended, or it expired): nothing was written, and the holder must stop.
    #[error("the run's lease was lost; nothing was written")]
    LeaseLost,
    /// Listening for Postgres notifications failed.
    #[error("listening for database notifications failed: {0}")]
    Listen(#[source] sea_orm::sqlx::Error),
    #[error("database query failed: {0}")]
    Query(#[from] sea_orm::DbErr),
}

/// Which database engine a [`Database`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Connection pool figures, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStatistics {
    /// Open connections, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// The database of one Async Coder instance: a connection pool and the queries on it.
#[derive(Clone, Debug)]
pub struct Database {
    connection: DatabaseConnection,
    backend: Backend,
    max_connections: u32,
}

impl Database {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`). For SQLite the folder of
    /// the file is created when missing. Does not migrate: call [`Database::migrate`].
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let backend = backend_of(url)?;
        if backend == Backend::Sqlite
            && let Some(folder) = sqlite_folder(url)
        {
            std::fs::create_dir_all(&folder).map_err(|source| Error::CreateFolder {
                path: folder.clone(),
                source,
            })?;
        }
        let max_connections = match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false)
            // Every connection of the pool: write-ahead log (readers do not block the writer,
            // nor the writer readers), and a commit that waits for the log to reach the disk
            // only at checkpoints. A commit survives the process being killed; a power loss
            // may lose the last ones, never corrupt the file (SQLite's documented guarantee).
            .map_sqlx_sqlite_opts(|options| {
                options
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            });
        let connection = sea_orm::Database::connect(options)
            .await
            .map_err(Error::Connect)?;
        Ok(Self {
            connection,
            backend,
            max_connections,
        })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), Error> {
        Migrator::up(&self.connection, None)
            .await
            .map_err(Error::Migrate)
    }

    /// Names of the migrations applied to this database, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<String>, Error> {
        let applied = Migrator::get_applied_migrations(&self.connection)
            .await
            .map_err(Error::Migrate)?;
        Ok(applied
            .iter()
            .map(|migration| migration.name().to_owned())
            .collect())
    }

    /// Answers `Ok` when the database answers a query.
    pub async fn ping(&self) -> Result<(), Error> {
        self.connection.ping().await.map_err(Error::Query)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at `BEGIN`
    /// (`BEGIN IMMEDIATE`), waiting for it under the busy timeout: a deferred transaction that
    /// reads first and writes later fails at once with "database is locked" when another
    /// connection wrote in between, and no busy timeout helps it. Postgres ignores the mode.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, Error> {
        self.connection
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .map_err(Error::Query)
    }

    pub fn pool_statistics(&self) -> PoolStatistics {
        let (size, idle) = match self.connection.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.connection.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.connection.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        PoolStatistics {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max: self.max_connections,
        }
    }

    /// Closes every connection of the pool.
    pub async fn close(self) -> Result<(), Error> {
        self.connection.close().await.map_err(Error::Query)
    }
}

fn backend_of(url: &str) -> Result<Backend, Error> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(Error::UnsupportedUrl(format!("{scheme}:...")))
    }
}

/// The folder an SQLite URL's file lives in, when it names a file in a folder.
fn sqlite_folder(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Path::new(path)
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// The SQLite URL for the database file inside a data folder.
pub fn sqlite_url_in(data_directory: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_directory.join("async-coder.db").display()
    )
}

/// The file of an SQLite URL (`sqlite://data/async-coder.db?mode=rwc` -> `data/async-coder.db`);
/// `None` for other databases and in-memory ones.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Holds an SQLite database for this process: the embedded database serves one server process.
/// A second server on the same file is refused at start (an exclusive lock on `<file>.lock`,
/// released when the process ends, however it ends), instead of both writing to one file and
/// the newcomer marking the first one's answers in progress as interrupted.
#[derive(Debug)]
pub struct SqliteOwnership {
    _lock: std::fs::File,
}

/// Why a server may not open an SQLite database.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error(
        "another Async Coder server is already using the SQLite database {0}. The embedded \
         database serves one server process: stop the other one first, or run several instances \
         on Postgres (--database-url postgres://...). Nothing was changed."
    )]
    InUse(PathBuf),
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SqliteOwnership {
    /// Takes the database `file` for this process, or says which other process has it.
    pub fn take(file: &Path) -> Result<Self, OwnershipError> {
        let mut lock_path = file.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        if let Some(folder) = lock_path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty())
        {
            std::fs::create_dir_all(folder).map_err(|source| OwnershipError::Lock {
                path: lock_path.clone(),
                source,
            })?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| OwnershipError::Lock {
                path: lock_path.clone(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => Ok(Self { _lock: lock }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(OwnershipError::InUse(file.to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(source)) => Err(OwnershipError::Lock {
                path: lock_path,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_per_sqlite_file() {
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("async-coder.db");
        let first = SqliteOwnership::take(&file).unwrap();
        let second = SqliteOwnership::take(&file).unwrap_err();
        assert!(second.to_string().contains("already using"), "{second}");
        drop(first);
        assert!(
            SqliteOwnership::take(&file).is_ok(),
            "free again once the first has gone"
        );
        assert_eq!(
            sqlite_file("sqlite://data/async-coder.db?mode=rwc"),
            Some(PathBuf::from("data/async-coder.db"))
        );
        assert_eq!(sqlite_file("postgres://x/y"), None);
        assert_eq!(sqlite_file("sqlite::memory:"), None);
    }

    #[test]
    fn recognises_backends_and_refuses_others() {
        assert_eq!(
            backend_of("sqlite://data/a.db?mode=rwc").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(backend_of("sqlite::memory:").ok(), Some(Backend::Sqlite));
        assert_eq!(
            backend_of("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            backend_of("postgresql://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        let error = backend_of("mysql://root:secret@h/db")
            .map(|_| ())
            .unwrap_err();
        // The refusal names the scheme but never echoes credentials.
        assert!(error.to_string().contains("mysql:"));
        assert!(!error.to_string().contains("secret"));
    }

    #[test]
    fn finds_the_sqlite_folder() {
        assert_eq!(
            sqlite_folder("sqlite://data/a.db?mode=rwc"),
            Some(PathBuf::from("data"))
        );
        assert_eq!(
            sqlite_folder("sqlite:///var/lib/ac/a.db"),
            Some(PathBuf::from("/var/lib/ac"))
        );
        assert_eq!(sqlite_folder("sqlite://a.db"), None);
        assert_eq!(sqlite_folder("sqlite::memory:"), None);
        assert_eq!(
            sqlite_url_in(Path::new("/srv/data")),
            "sqlite:///srv/data/async-coder.db?mode=rwc"
        );
    }
}
