//! Command-line flags, each with an environment variable as fallback.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use leptos::config::LeptosOptions;

/// Defaults for the site when no Leptos.toml is found next to the server.
const EMBEDDED_LEPTOS_TOML: &str = include_str!("../../Leptos.toml");

#[derive(Clone, Debug, Parser)]
#[command(
    name = "server",
    version,
    about = "Async Coder: a self-hostable, multi-user AI coding workspace in the browser.",
    after_help = "Log verbosity follows RUST_LOG (for example RUST_LOG=debug or RUST_LOG=server=debug,info)."
)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", value_name = "ADDRESS:PORT")]
    pub site_addr: Option<SocketAddr>,

    /// Folder of the built site (pkg/ with the WebAssembly, the stylesheet and public assets).
    #[arg(long, env = "LEPTOS_SITE_ROOT", value_name = "FOLDER")]
    pub site_root: Option<String>,

    /// Leptos site configuration; missing file means built-in defaults.
    #[arg(
        long,
        env = "ASYNC_CODER_LEPTOS_CONFIG",
        default_value = "Leptos.toml",
        value_name = "FILE"
    )]
    pub leptos_config: PathBuf,

    /// Folder for the embedded database and other local state; created on first start.
    #[arg(
        long,
        env = "ASYNC_CODER_DATA_DIR",
        default_value = "data",
        value_name = "FOLDER"
    )]
    pub data_dir: PathBuf,

    /// File holding the master key that encrypts provider keys (`v<n>:<base64>`, mode 0600), as
    /// secrets are mounted in containers. Default `<data-dir>/master.key`, created on first start
    /// of a database that holds no encrypted key yet. `ASYNC_CODER_MASTER_KEY` overrides it.
    #[arg(long, env = "ASYNC_CODER_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,

    /// Database to use: `sqlite://path/file.db?mode=rwc` or `postgres://user:password@host:5432/name`.
    /// Defaults to an SQLite file in the data folder.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Reverse proxies whose `X-Forwarded-For` header is trusted (comma-separated addresses).
    /// Without it, the client address is the connection's peer.
    #[arg(
        long,
        env = "ASYNC_CODER_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "ADDRESSES"
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// The address people reach the server by, e.g. `https://coder.example.com` (behind a
    /// reverse proxy). Its host is answered besides the loopback names, and with https the
    /// session cookie is always `Secure`.
    #[arg(long, env = "ASYNC_CODER_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// More host names the server answers (`name` or `name:port`, comma-separated). Loopback
    /// names and the listening address are always answered; any other `Host` is refused (DNS
    /// rebinding).
    #[arg(
        long = "allowed-host",
        env = "ASYNC_CODER_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOSTS"
    )]
    pub allowed_hosts: Vec<String>,

    /// Tier limits (TOML with [public], [free], [premium] and [enterprise] sections); the built-in
    /// limits when not given.
    #[arg(long, env = "ASYNC_CODER_TIERS_FILE", value_name = "FILE")]
    pub tiers_file: Option<PathBuf>,

    /// Largest file the editor saves or an import brings, in bytes.
    #[arg(long, env = "ASYNC_CODER_MAX_FILE_BYTES", default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_file_bytes: u64,

    /// Largest uploaded archive (.zip or .tar.gz) for a project import, in bytes.
    #[arg(long, env = "ASYNC_CODER_IMPORT_MAX_ARCHIVE_BYTES", default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub import_max_archive_bytes: u64,

    /// Largest unpacked total of an imported project, in bytes.
    #[arg(long, env = "ASYNC_CODER_IMPORT_MAX_PROJECT_BYTES", default_value_t = 200 * 1024 * 1024, value_name = "BYTES")]
    pub import_max_project_bytes: u64,

    /// Most files in an imported project.
    #[arg(
        long,
        env = "ASYNC_CODER_IMPORT_MAX_FILES",
        default_value_t = 20_000,
        value_name = "COUNT"
    )]
    pub import_max_files: usize,

    /// Largest ratio of unpacked size to archive size an import accepts (refuses zip bombs).
    #[arg(
        long,
        env = "ASYNC_CODER_IMPORT_MAX_RATIO",
        default_value_t = 100,
        value_name = "RATIO"
    )]
    pub import_max_ratio: u64,

    /// Sign-ups allowed per client address and hour (many people behind one address: raise it).
    #[arg(long, env = "ASYNC_CODER_SIGN_UPS_PER_ADDRESS_PER_HOUR", default_value_t = services::accounts::DEFAULT_SIGN_UPS_PER_ADDRESS_PER_HOUR, value_name = "COUNT")]
    pub sign_ups_per_address_per_hour: u32,

    /// Provider addresses that are not public but may be called (a local Ollama, llama.cpp or
    /// vLLM server): `host`, `host:port`, or a URL. Every other private, loopback or link-local
    /// address is refused.
    #[arg(
        long = "allow-local-endpoint",
        env = "ASYNC_CODER_ALLOW_LOCAL_ENDPOINTS",
        value_delimiter = ',',
        value_name = "HOST[:PORT]",
        value_parser = parse_allowed_endpoint
    )]
    pub allowed_local_endpoints: Vec<llm::AllowedEndpoint>,

    /// Seconds to wait for an AI provider to start answering.
    #[arg(
        long,
        env = "ASYNC_CODER_AI_FIRST_BYTE_TIMEOUT",
        default_value_t = 300,
        value_name = "SECONDS"
    )]
    pub ai_first_byte_timeout: u64,

    /// Seconds a streamed AI answer may pause between two chunks.
    #[arg(
        long,
        env = "ASYNC_CODER_AI_CHUNK_TIMEOUT",
        default_value_t = 120,
        value_name = "SECONDS"
    )]
    pub ai_chunk_timeout: u64,

    /// Seconds between keep-alive comments while a streamed answer waits for its first token.
    #[arg(
        long,
        env = "ASYNC_CODER_AI_HEARTBEAT",
        default_value_t = 5,
        value_name = "SECONDS"
    )]
    pub ai_heartbeat: u64,

    /// Seconds a run's lease (an answer being written) lasts without renewal: after that,
    /// another instance recovers it (an answer is marked interrupted with its text).
    #[arg(
        long,
        env = "ASYNC_CODER_RUN_LEASE_SECONDS",
        default_value_t = 15,
        value_name = "SECONDS"
    )]
    pub run_lease_seconds: u64,

    /// Seconds between the renewals of a run's lease by its instance; below the lease, so that
    /// a slow renewal or two do not lose it.
    #[arg(
        long,
        env = "ASYNC_CODER_RUN_HEARTBEAT_SECONDS",
        default_value_t = 5,
        value_name = "SECONDS"
    )]
    pub run_heartbeat_seconds: u64,

    /// Days an ended run (an answer's events, a command's output) is kept before it is deleted
    /// with its events; 0 keeps them forever. One instance at a time deletes, once an hour.
    #[arg(
        long,
        env = "ASYNC_CODER_RUN_RETENTION_DAYS",
        default_value_t = 14,
        value_name = "DAYS"
    )]
    pub run_retention_days: u64,

    /// Where projects' worktrees are written (default `<data-dir>/worktrees`). Every folder
    /// above it must be searchable by the sandbox uid (bubblewrap resolves the path as that
    /// uid); a data folder of mode 0700 is not, so put them elsewhere then.
    #[arg(long, env = "ASYNC_CODER_WORKTREES_DIR", value_name = "FOLDER")]
    pub worktrees_dir: Option<PathBuf>,

    /// The unprivileged uid project commands run as when the server runs as root (a server
    /// started as another user runs them as itself). Never 0. 65534 is `nobody` on Debian.
    #[arg(
        long,
        env = "ASYNC_CODER_SANDBOX_UID",
        default_value_t = 65534,
        value_name = "UID"
    )]
    pub sandbox_uid: u32,

    /// The group id project commands run as (with `--sandbox-uid`). 65534 is `nogroup`.
    #[arg(
        long,
        env = "ASYNC_CODER_SANDBOX_GID",
        default_value_t = 65534,
        value_name = "GID"
    )]
    pub sandbox_gid: u32,

    /// Refuse to run project commands unless bubblewrap works (without it, the helper's own
    /// namespaces and Landlock confine them).
    #[arg(long, env = "ASYNC_CODER_SANDBOX_REQUIRE_BUBBLEWRAP")]
    pub sandbox_require_bubblewrap: bool,

    /// The lowest Landlock ABI under which project commands may run (0: Landlock not
    /// required; 4 or more also forbids TCP by Landlock).
    #[arg(
        long,
        env = "ASYNC_CODER_SANDBOX_MIN_LANDLOCK_ABI",
        default_value_t = 1,
        value_name = "ABI"
    )]
    pub sandbox_min_landlock_abi: u32,

    /// Toolchain folders project commands may read and execute (bound read-only at the same
    /// path, e.g. `/opt/rust,/opt/node`; comma-separated). System folders are always there.
    #[arg(
        long = "sandbox-toolchain",
        env = "ASYNC_CODER_SANDBOX_TOOLCHAINS",
        value_delimiter = ',',
        value_name = "FOLDERS"
    )]
    pub sandbox_toolchains: Vec<PathBuf>,

    /// Let a project's `setup` command use the host's network (to download its dependencies:
    /// `pip install`, `npm ci`, `cargo fetch`). Off by default; the commands themselves never
    /// have it. With it, a setup also reaches what listens on this machine's loopback.
    #[arg(long, env = "ASYNC_CODER_SANDBOX_SETUP_NETWORK")]
    pub sandbox_setup_network: bool,

    /// The longest a project command may run, in seconds, whatever a tier allows.
    #[arg(
        long,
        env = "ASYNC_CODER_RUNNER_MAX_TIMEOUT",
        default_value_t = 1800,
        value_name = "SECONDS"
    )]
    pub runner_max_timeout: u64,

    /// Log line format.
    #[arg(long, env = "ASYNC_CODER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to do; without a command the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the application (the default).
    Serve,
    /// Replace the master key with a new random one and re-encrypt every stored provider key
    /// (all or nothing). With a key file, the file is replaced; with ASYNC_CODER_MASTER_KEY, the
    /// new value is printed and must be set before the next start.
    RotateMasterKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the Leptos configuration {path}: {message}")]
    Leptos { path: PathBuf, message: String },
    #[error(
        "--run-heartbeat-seconds ({heartbeat}) must be at least 1 and below --run-lease-seconds \
         ({lease}), or leases expire while their holder is alive"
    )]
    RunLease { lease: u64, heartbeat: u64 },
    #[error(
        "--public-url must be an http:// or https:// address with a host and nothing secret, \
         such as https://coder.example.com (got {0:?})"
    )]
    PublicUrl(String),
}

/// The `host[:port]` of an http(s) URL, and whether it is https.
fn public_host(url: &str) -> Result<(String, bool), ConfigError> {
    let refused = || ConfigError::PublicUrl(url.to_owned());
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(refused());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(refused());
    }
    Ok((authority.to_ascii_lowercase(), https))
}

fn parse_allowed_endpoint(text: &str) -> Result<llm::AllowedEndpoint, String> {
    llm::AllowedEndpoint::parse(text)
}

impl Config {
    /// The AI gateway as configured.
    pub fn ai(&self) -> services::ai::Ai {
        let mut ai = services::ai::Ai::new(
            llm::AddressPolicy::new(self.allowed_local_endpoints.clone()),
            llm::Timeouts {
                first_byte: std::time::Duration::from_secs(self.ai_first_byte_timeout.max(1)),
                between_chunks: std::time::Duration::from_secs(self.ai_chunk_timeout.max(1)),
                ..llm::Timeouts::default()
            },
            llm::RetryPolicy::default(),
        );
        ai.heartbeat = std::time::Duration::from_secs(self.ai_heartbeat.max(1));
        ai
    }

    /// The settings of this instance's runs (leases; the rest as built in).
    /// How long ended runs are kept (zero: forever).
    pub fn run_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.run_retention_days.saturating_mul(24 * 60 * 60))
    }

    pub fn runs(&self) -> Result<services::runs::RunsConfig, ConfigError> {
        let (lease, heartbeat) = (self.run_lease_seconds, self.run_heartbeat_seconds);
        if heartbeat == 0 || heartbeat >= lease {
            return Err(ConfigError::RunLease { lease, heartbeat });
        }
        Ok(services::runs::RunsConfig {
            lease: services::runs::LeaseConfig {
                lease: std::time::Duration::from_secs(lease),
                heartbeat: std::time::Duration::from_secs(heartbeat),
            },
            ..services::runs::RunsConfig::default()
        })
    }

    pub fn project_limits(&self) -> services::projects::ProjectLimits {
        services::projects::ProjectLimits {
            max_file_bytes: self.max_file_bytes,
            max_project_bytes: self.import_max_project_bytes,
            max_files: self.import_max_files,
            max_archive_bytes: self.import_max_archive_bytes,
            max_expansion_ratio: self.import_max_ratio,
        }
    }

    /// The host names answered and the cookie rule: loopback names always, the public URL's
    /// host, `--allowed-host`, and the listening address when it is a specific one.
    pub fn site_policy(
        &self,
        listening: std::net::SocketAddr,
    ) -> Result<app::api::request::SitePolicy, ConfigError> {
        let mut hosts: Vec<String> = self
            .allowed_hosts
            .iter()
            .map(|host| host.trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .collect();
        let mut https = false;
        if let Some(url) = &self.public_url {
            let (host, secure) = public_host(url.trim())?;
            hosts.push(host);
            https = secure;
        }
        if !listening.ip().is_unspecified() {
            hosts.push(listening.to_string());
        }
        Ok(app::api::request::SitePolicy {
            allowed_hosts: std::sync::Arc::new(hosts),
            https,
        })
    }

    /// The runner's settings: worktrees in `<data-dir>/worktrees`, the sandbox's identity and
    /// minimum, toolchains and the longest run.
    pub fn runner_settings(&self) -> services::runner::RunnerSettings {
        let mut settings = services::runner::RunnerSettings::new(
            self.worktrees_dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("worktrees")),
        );
        settings.identity = sandbox::Identity {
            uid: self.sandbox_uid,
            gid: self.sandbox_gid,
        };
        settings.policy = sandbox::Policy {
            require_bubblewrap: self.sandbox_require_bubblewrap,
            minimum_landlock_abi: self.sandbox_min_landlock_abi,
            ..sandbox::Policy::default()
        };
        settings.toolchains = self.sandbox_toolchains.clone();
        settings.setup_network = self.sandbox_setup_network;
        settings.max_timeout = std::time::Duration::from_secs(self.runner_max_timeout.max(1));
        settings
    }

    /// The master key file: `--master-key-file`, else `<data-dir>/master.key`.
    pub fn master_key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(services::secrets::MASTER_KEY_FILE))
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| db::sqlite_url_in(&self.data_dir))
    }

    /// The site options: the Leptos.toml file (or the built-in defaults when it is missing),
    /// overridden by `LEPTOS_*` environment variables, overridden by flags.
    pub fn leptos_options(&self) -> Result<LeptosOptions, ConfigError> {
        let text = match std::fs::read_to_string(&self.leptos_config) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                EMBEDDED_LEPTOS_TOML.to_owned()
            }
            Err(error) => {
                return Err(ConfigError::Leptos {
                    path: self.leptos_config.clone(),
                    message: error.to_string(),
                });
            }
        };
        let mut options =
            leptos::config::get_config_from_str(&text).map_err(|error| ConfigError::Leptos {
                path: self.leptos_config.clone(),
                message: error.to_string(),
            })?;
        if let Some(site_addr) = self.site_addr {
            options.site_addr = site_addr;
        }
        if let Some(site_root) = &self.site_root {
            options.site_root = site_root.as_str().into();
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_policy_answers_loopback_the_public_url_and_allowed_hosts_only() {
        let config = Config::parse_from([
            "server",
            "--public-url",
            "https://Coder.Example.com/app",
            "--allowed-host",
            "intranet:8080,backup.example.com",
        ]);
        let site = config.site_policy("0.0.0.0:3000".parse().unwrap()).unwrap();
        assert!(site.https);
        for host in [
            "coder.example.com",
            "localhost:3000",
            "127.0.0.1:9",
            "[::1]:3000",
            "intranet:8080",
            "backup.example.com:443",
        ] {
            assert!(site.allows_host(host), "{host}");
        }
        for host in [
            "attacker.example",
            "coder.example.com.attacker.example",
            "intranet:8081",
            "0.0.0.0:3000",
            "",
        ] {
            assert!(!site.allows_host(host), "{host}");
        }
        let plain = Config::parse_from(["server"])
            .site_policy("192.168.1.5:3000".parse().unwrap())
            .unwrap();
        assert!(!plain.https);
        assert!(
            plain.allows_host("192.168.1.5:3000"),
            "the listening address"
        );
        assert!(!plain.allows_host("192.168.1.5:4000"));
        for wrong in [
            "coder.example.com",
            "ftp://x",
            "https://",
            "https://user:secret@x",
        ] {
            assert!(
                Config::parse_from(["server", "--public-url", wrong])
                    .site_policy("127.0.0.1:3000".parse().unwrap())
                    .is_err(),
                "{wrong}"
            );
        }
    }

    #[test]
    fn every_flag_is_documented_and_parses() {
        let config = Config::try_parse_from([
            "server",
            "--site-addr",
            "127.0.0.1:4000",
            "--site-root",
            "/srv/site",
            "--data-dir",
            "/srv/data",
            "--log-format",
            "json",
            "--leptos-config",
            "/nonexistent/Leptos.toml",
            "--sandbox-uid",
            "1234",
            "--sandbox-toolchain",
            "/opt/rust,/opt/node",
            "--sandbox-setup-network",
        ])
        .unwrap();
        let runner = config.runner_settings();
        assert!(runner.setup_network);
        assert!(
            !Config::try_parse_from(["server"])
                .unwrap()
                .runner_settings()
                .setup_network,
            "a setup has no network unless the administrator says so"
        );
        assert_eq!(runner.identity.uid, 1234);
        assert_eq!(runner.identity.gid, 65534);
        assert_eq!(runner.worktrees, PathBuf::from("/srv/data/worktrees"));
        assert_eq!(runner.toolchains.len(), 2);
        assert_eq!(
            config.database_url(),
            "sqlite:///srv/data/async-coder.db?mode=rwc"
        );
        assert_eq!(config.log_format, LogFormat::Json);
        let options = config.leptos_options().unwrap();
        assert_eq!(options.site_addr.to_string(), "127.0.0.1:4000");
        assert_eq!(&*options.site_root, "/srv/site");
        assert_eq!(&*options.output_name, "async-coder");
        assert_eq!(&*options.site_pkg_dir, "pkg");
    }

    #[test]
    fn run_retention_is_two_weeks_by_default_and_zero_keeps_forever() {
        let default = Config::try_parse_from(["server"]).unwrap();
        assert_eq!(
            default.run_retention(),
            std::time::Duration::from_secs(14 * 24 * 60 * 60)
        );
        let forever = Config::try_parse_from(["server", "--run-retention-days", "0"]).unwrap();
        assert!(forever.run_retention().is_zero());
    }

    #[test]
    fn lease_flags_feed_the_runs_and_are_checked() {
        let defaults = Config::try_parse_from(["server"]).unwrap().runs().unwrap();
        assert_eq!(defaults, services::runs::RunsConfig::default());
        let config = Config::try_parse_from([
            "server",
            "--run-lease-seconds",
            "30",
            "--run-heartbeat-seconds",
            "10",
        ])
        .unwrap()
        .runs()
        .unwrap();
        assert_eq!(config.lease.lease, std::time::Duration::from_secs(30));
        assert_eq!(config.lease.heartbeat, std::time::Duration::from_secs(10));
        for (lease, heartbeat) in [("10", "10"), ("10", "20"), ("10", "0")] {
            let error = Config::try_parse_from([
                "server",
                "--run-lease-seconds",
                lease,
                "--run-heartbeat-seconds",
                heartbeat,
            ])
            .unwrap()
            .runs()
            .unwrap_err();
            assert!(
                error.to_string().contains("--run-heartbeat-seconds"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_rotation_command_parses() {
        let config =
            Config::try_parse_from(["server", "--data-dir", "/srv/data", "rotate-master-key"])
                .unwrap();
        assert_eq!(config.command, Some(Command::RotateMasterKey));
        assert_eq!(Config::try_parse_from(["server"]).unwrap().command, None);
    }

    #[test]
    fn a_bad_flag_is_a_clear_error() {
        let error =
            Config::try_parse_from(["server", "--site-addr", "not-an-address"]).unwrap_err();
        assert!(error.to_string().contains("--site-addr"), "{error}");
        let error = Config::try_parse_from(["server", "--log-format", "xml"]).unwrap_err();
        assert!(
            error.to_string().contains("text") && error.to_string().contains("json"),
            "{error}"
        );
    }
}
