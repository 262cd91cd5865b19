//! `server`: runs Async Coder. See `server --help` for every option.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use server::config::{Command, Config, LogFormat};
use server::{AppState, Metrics};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Re-executed as the sandbox's helper (`/proc/self/exe` with the helper's marker): set up
    // the inner layers and become the project's command, before any thread or runtime exists.
    if sandbox::is_helper_invocation() {
        sandbox::helper_main();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve_main())
}

async fn serve_main() -> ExitCode {
    let started = Instant::now();
    let config = Config::parse();
    init_logging(config.log_format);
    let outcome = match config.command {
        Some(Command::RotateMasterKey) => rotate_master_key(config).await,
        Some(Command::Serve) | None => run(config, started).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn run(config: Config, started: Instant) -> anyhow::Result<()> {
    let leptos_options = config.leptos_options()?;
    let database_url = config.database_url();
    // The embedded database serves one process: a second server on the same file is refused
    // before it touches it. Held until the process ends.
    let _sqlite_ownership = db::sqlite_file(&database_url)
        .map(|file| db::SqliteOwnership::take(&file))
        .transpose()?;
    let database = db::Database::connect(&database_url).await?;
    database.migrate().await?;
    tracing::info!(
        backend = database.backend().name(),
        migrations = database.applied_migrations().await?.len(),
        "database ready"
    );

    let address = leptos_options.site_addr;
    let site = config.site_policy(address)?;
    // Every instance of one database must hold the same master key: a wrong one refuses to
    // start here, before it could fail users' requests one by one.
    let master_key = services::secrets::master_key_for(&database, &config.master_key_file())
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let mut services = services::Services::new(database.clone(), master_key)
        .with_context_directory(config.data_dir.join("context"));
    services.projects = config.project_limits();
    services.sign_ups_per_address_per_hour = config.sign_ups_per_address_per_hour;
    services.ai = config.ai();
    if let Some(path) = &config.tiers_file {
        let text = std::fs::read_to_string(path).map_err(|error| {
            anyhow::anyhow!("cannot read the tiers file {}: {error}", path.display())
        })?;
        services.tiers = std::sync::Arc::new(services::policy::TierPolicy::parse(&text)?);
    }
    // This instance's leases (the answers it writes) and, on Postgres, the notifications of
    // other instances' writes for the readers it serves.
    services.runs = services::runs::Runs::new(database.clone(), config.runs()?);
    services.runs.listen().await?;
    tracing::info!(instance = services.runs.instance(), "runs ready");
    services.runner = std::sync::Arc::new(probe_sandbox(&config).await?);
    let interrupted = services.interrupt_answers_without_run().await?;
    if interrupted > 0 {
        tracing::info!(
            answers = interrupted,
            "answers left unfinished by a server from before runs are marked interrupted"
        );
    }
    // Now and every half lease: answers whose instance went away are marked interrupted.
    tokio::spawn(services.clone().keep_recovering_answers());
    // The same for command runs: ended as interrupted, their reservations given back.
    tokio::spawn(services.clone().keep_recovering_command_runs());
    // Once an hour on one instance: ended runs past the retention are deleted.
    tokio::spawn(
        services
            .runs
            .clone()
            .keep_removing_old_runs(config.run_retention()),
    );
    // And agent tasks: resumed here from their journal.
    tokio::spawn(services.clone().keep_recovering_agent_tasks());
    let state = AppState {
        leptos_options,
        services: services.clone(),
        metrics: Metrics::install(),
        trusted_proxies: server::TrustedProxies(std::sync::Arc::new(
            config.trusted_proxies.clone(),
        )),
        site,
    };
    tokio::spawn(state.metrics.clone().keep_up(Duration::from_secs(5)));
    let router = server::router(state);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {address}: {error}"))?;
    tracing::info!(
        "listening on http://{address} (started in {} ms)",
        started.elapsed().as_millis()
    );
    // Start-up is over: the code it ran need not stay resident, nor what was run long ago.
    tokio::spawn(server::resident_code::release_every(Duration::from_secs(
        60,
    )));
    let stopping = services.clone();
    let shutdown = async move {
        shutdown_signal().await;
        // Answers in flight end now (saved as interrupted, their runs ended), so that their
        // readers' connections end too instead of holding the shutdown.
        stopping.live.stop_all_for_shutdown();
    };
    server::listen::serve(listener, router, shutdown).await;
    let unfinished = services
        .stop_answers_for_shutdown(Duration::from_secs(5))
        .await;
    if unfinished > 0 {
        tracing::warn!(
            answers = unfinished,
            "answers still being written at shutdown are left to another instance's recovery"
        );
    }
    // Usage rows still queued for the writer go in before the database closes.
    services.flush_usage().await;
    database.close().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Probes each layer of the sandbox as the configured unprivileged identity, logs what it
/// found, and sets up the runner (disabled, with the reason and the fix, below the minimum).
async fn probe_sandbox(config: &Config) -> anyhow::Result<services::runner::Runner> {
    let settings = config.runner_settings();
    let helper = std::path::PathBuf::from("/proc/self/exe");
    let runner =
        tokio::task::spawn_blocking(move || services::runner::Runner::probe(settings, helper))
            .await?;
    let status = runner.status();
    if let Some(report) = &status.report {
        for (layer, state) in [
            ("user namespaces", &report.user_namespaces),
            ("network namespace", &report.network_namespace),
            ("bubblewrap", &report.bubblewrap),
            ("Landlock", &report.landlock),
            ("seccomp", &report.seccomp),
            ("cgroup v2", &report.cgroup_v2),
        ] {
            tracing::info!(
                layer,
                available = state.available,
                detail = %state.detail,
                "sandbox layer"
            );
        }
    }
    match (&status.layers, &status.reason) {
        (Some(layers), _) => tracing::info!(
            isolation = ?layers.isolation,
            landlock = layers.landlock,
            seccomp = layers.seccomp,
            uid = status.report.as_ref().map(|report| report.identity.uid),
            "project commands run sandboxed"
        ),
        (None, reason) => tracing::warn!(
            reason = reason.as_deref().unwrap_or("unknown"),
            fix = status.fix.as_deref().unwrap_or(""),
            "running project commands is disabled on this server"
        ),
    }
    Ok(runner)
}

/// `server rotate-master-key`: re-encrypts every stored provider key under a new master key.
async fn rotate_master_key(config: Config) -> anyhow::Result<()> {
    use services::ExposeSecret;
    let database = db::Database::connect(&config.database_url()).await?;
    database.migrate().await?;
    let rotation = services::secrets::rotate(&database, &config.master_key_file()).await?;
    tracing::info!(
        old_version = rotation.old_version,
        new_version = rotation.new_version,
        keys = rotation.keys_reencrypted,
        "master key rotated"
    );
    if let Some(value) = rotation.new_environment_value {
        // The operator asked for this secret: it goes to standard output, never to the log.
        use std::io::Write;
        writeln!(
            std::io::stdout(),
            "Set {}={} before the next start; the old key no longer decrypts anything.",
            services::secrets::MASTER_KEY_VARIABLE,
            value.expose_secret()
        )?;
    }
    database.close().await?;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM; in-flight requests then finish before the process ends.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
