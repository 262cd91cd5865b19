//! Real server processes in tests: started from the test's build of the binary, killed with
//! SIGKILL as `kill -9` does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every child process of the test, killed (SIGKILL) and reaped when dropped.
#[derive(Default)]
pub struct Children {
    children: Vec<Option<Child>>,
}

impl Children {
    pub fn push(&mut self, child: Child) -> usize {
        self.children.push(Some(child));
        self.children.len() - 1
    }

    /// Kills child `index` with SIGKILL, as `kill -9` does, and reaps it.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.children[index].take() {
            // Already gone is fine: either way it runs no more.
            child.kill().unwrap_or(());
            child.wait().map(drop).unwrap_or(());
        }
    }

    pub fn get(&mut self, index: usize) -> &mut Child {
        self.children[index].as_mut().expect("a running child")
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for index in 0..self.children.len() {
            self.kill(index);
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

pub async fn wait_for_status(client: &reqwest::Client, url: &str, logs: &[PathBuf]) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(reply) = client.get(url).send().await
            && reply.status() == reqwest::StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs: Vec<String> = logs.iter().map(|path| log_tail(path)).collect();
    panic!("{url} did not become ready: {logs:#?}");
}

/// How the test's server processes run: over `database_url`, each with its data and log in
/// `folder`, `upstream` allowed as a local provider, runs' leases of `lease` renewed every second,
/// and the master key `master_key` (encoded).
pub struct ServerSettings<'a> {
    pub database_url: &'a str,
    pub folder: &'a Path,
    pub upstream: std::net::SocketAddr,
    pub lease: Duration,
    pub master_key: &'a str,
}

impl ServerSettings<'_> {
    /// Starts `count` servers one after the other (the first writes the master key's check),
    /// each ready when this returns: their ports and logs, in order.
    pub async fn start(
        &self,
        count: usize,
        children: &mut Children,
        client: &reqwest::Client,
    ) -> (Vec<u16>, Vec<PathBuf>) {
        let mut ports = Vec::new();
        let mut logs = Vec::new();
        for index in 0..count {
            let port = free_port();
            let log = self.folder.join(format!("instance-{index}.log"));
            children.push(self.command(index, port, &log).spawn().unwrap());
            wait_for_status(
                client,
                &format!("http://127.0.0.1:{port}/readyz"),
                std::slice::from_ref(&log),
            )
            .await;
            ports.push(port);
            logs.push(log);
        }
        (ports, logs)
    }

    fn command(&self, index: usize, port: u16, log: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
        command
            .arg("--database-url")
            .arg(self.database_url)
            .arg("--data-dir")
            .arg(self.folder.join(format!("data-{index}")))
            .arg("--site-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--leptos-config")
            .arg("missing-on-purpose.toml")
            .arg("--allow-local-endpoint")
            .arg(self.upstream.to_string())
            .arg("--trusted-proxies")
            .arg("127.0.0.1")
            .arg("--run-lease-seconds")
            .arg(self.lease.as_secs().to_string())
            .arg("--run-heartbeat-seconds")
            .arg("1")
            .env("ASYNC_CODER_MASTER_KEY", self.master_key)
            .env_remove("ASYNC_CODER_MASTER_KEY_FILE")
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(Stdio::null());
        command
    }
}
