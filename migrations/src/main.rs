//! `migrations`: apply, roll back and inspect Async Coder's schema by hand.
//!
//! The server applies pending migrations itself at start; this tool is for operators
//! (`migrations status`, `migrations down -n 1`, ...).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use migrations::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{Database, DatabaseConnection};

#[derive(Parser)]
#[command(
    name = "migrations",
    version,
    about = "Apply, roll back and list Async Coder's schema migrations"
)]
struct Cli {
    /// Database to migrate: `sqlite://path/to/file.db?mode=rwc` or `postgres://user@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/async-coder.db?mode=rwc"
    )]
    database_url: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (all of them unless --steps is given).
    Up {
        #[arg(short = 'n', long)]
        steps: Option<u32>,
    },
    /// Roll back applied migrations (one unless --steps is given).
    Down {
        #[arg(short = 'n', long, default_value_t = 1)]
        steps: u32,
    },
    /// List every migration and whether it is applied.
    Status,
    /// Roll back every applied migration, then apply them all again.
    Refresh,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("migrations: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Some(path) = sqlite_parent_directory(&cli.database_url) {
        std::fs::create_dir_all(&path)
            .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    }
    let connection: DatabaseConnection = Database::connect(&cli.database_url)
        .await
        .map_err(|error| format!("cannot connect to the database: {error}"))?;
    let result = match cli.command {
        Command::Up { steps } => Migrator::up(&connection, steps).await,
        Command::Down { steps } => Migrator::down(&connection, Some(steps)).await,
        Command::Refresh => Migrator::refresh(&connection).await,
        Command::Status => Ok(()),
    };
    result.map_err(|error| error.to_string())?;
    let migrations = Migrator::get_migration_with_status(&connection)
        .await
        .map_err(|error| error.to_string())?;
    let mut output = String::new();
    for migration in migrations {
        output.push_str(&format!(
            "{:<10} {}\n",
            format!("{:?}", migration.status()),
            migration.name()
        ));
    }
    eprint!("{output}");
    Ok(())
}

/// The folder an SQLite file URL points into, so that it can be created before connecting.
fn sqlite_parent_directory(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://")?.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map(std::path::Path::to_path_buf)
}
