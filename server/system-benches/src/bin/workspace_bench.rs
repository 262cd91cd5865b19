//! Workspace benchmark: a project of 5,000 files and 50 MB of text, imported through the real
//! HTTP surface, then the workspace page, the tree, opening a file, saving a file and a
//! project-wide search, each timed many times through the whole router (layers, guards, server
//! functions, database). Prints median and p95 per operation, on SQLite and (when it answers)
//! Postgres.
//!
//! Run: `scripts/bench-workspace` (or `cargo run --release -p system-benches --bin workspace_bench`).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::panic
)]

use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use db::testing::{TestDatabase, backends};
use http_body_util::BodyExt;
use leptos::config::LeptosOptions;
use server::{AppState, Metrics};
use tower::ServiceExt;

const FILES: usize = 5_000;
const TOTAL_BYTES: usize = 50 * 1024 * 1024;
const ROUNDS: usize = 40;

fn request(method: &str, path: &str, cookie: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::ORIGIN, "http://127.0.0.1:3000")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    let mut request = builder.body(Body::from(body)).unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>, Option<String>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|cookie| cookie.starts_with("session="))
        .map(|cookie| cookie.split(';').next().unwrap_or_default().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec(), cookie)
}

fn encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// Source-like text: varied identifiers so that it compresses like real code, not like a bomb.
fn file_text(index: usize, size: usize) -> String {
    let mut text = String::with_capacity(size + 200);
    let mut line = 0usize;
    while text.len() < size {
        let seed = index
            .wrapping_mul(2_654_435_761)
            .wrapping_add(line.wrapping_mul(40_503));
        text.push_str(&format!(
            "    let value_{:x} = compute_{}(input_{:x}, {}); // step {line} of module {index}\n",
            seed % 65_521,
            seed % 997,
            (seed >> 7) % 4093,
            seed % 10_007
        ));
        line += 1;
    }
    if index == FILES / 2 {
        text.push_str("fn needle_in_the_haystack() {}\n");
    }
    text
}

fn project_zip() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let size = TOTAL_BYTES / FILES;
    for index in 0..FILES {
        let path = format!(
            "crate_{:02}/src/module_{:02}/file_{index:05}.rs",
            index % 50,
            index % 20
        );
        writer.start_file(path, options).unwrap();
        writer.write_all(file_text(index, size).as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn summary(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p95 = samples[(samples.len() * 95).div_ceil(100).saturating_sub(1)];
    println!(
        "  {name:<34} median {:>9.2} ms   p95 {:>9.2} ms   ({} runs)",
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        samples.len()
    );
}

async fn time<F, Fut>(rounds: usize, mut operation: F) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let started = Instant::now();
        operation(round).await;
        samples.push(started.elapsed());
    }
    samples
}

#[tokio::main]
async fn main() {
    println!(
        "Building a project of {FILES} files, {} MB of text…",
        TOTAL_BYTES / 1024 / 1024
    );
    let archive = project_zip();
    println!(
        "  archive: {:.1} MB (.zip, deflated)",
        archive.len() as f64 / 1e6
    );
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = services::Services::new(
            database.database.clone(),
            services::secrets::MasterKey::generate(1).unwrap(),
        );
        let state = AppState {
            leptos_options: LeptosOptions::builder()
                .output_name("async-coder")
                .site_root("target/site")
                .build(),
            services,
            metrics: Metrics::install(),
            trusted_proxies: server::TrustedProxies::default(),
            site: app::api::request::SitePolicy::default(),
        };
        let router = server::router(state);
        let (status, body, cookie) = send(
            &router,
            request(
                "POST",
                "/api/auth/sign-up",
                None,
                b"email=bench%40example.com&name=Bench&password=correct+horse+battery+staple"
                    .to_vec(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let cookie = cookie.unwrap();

        println!(
            "\n{} — {FILES} files, {} MB",
            backend.name(),
            TOTAL_BYTES / 1024 / 1024
        );
        let started = Instant::now();
        let (status, body, _) = send(
            &router,
            request(
                "POST",
                "/api/projects/import?name=Bench",
                Some(&cookie),
                archive.clone(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        println!(
            "  import (.zip upload to stored)        {:>9.2} s",
            started.elapsed().as_secs_f64()
        );
        let project: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let project = project["id"].as_str().unwrap().to_owned();

        let tree_form = format!("project_id={project}").into_bytes();
        let (_, tree, _) = send(
            &router,
            request("POST", "/api/files/tree", Some(&cookie), tree_form.clone()),
        )
        .await;
        let tree: serde_json::Value = serde_json::from_slice(&tree).unwrap();
        let files: Vec<String> = tree["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| file["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(files.len(), FILES);

        let page_path = format!("/projects/{project}");
        let mut page = time(ROUNDS, |_| {
            let (router, page_path, cookie) = (router.clone(), page_path.clone(), cookie.clone());
            async move {
                let (status, _, _) = send(
                    &router,
                    request("GET", &page_path, Some(&cookie), Vec::new()),
                )
                .await;
                assert_eq!(status, StatusCode::OK);
            }
        })
        .await;
        summary("workspace page (server response)", &mut page);

        let mut listing = time(ROUNDS, |_| {
            let (router, form, cookie) = (router.clone(), tree_form.clone(), cookie.clone());
            async move {
                let (status, _, _) = send(
                    &router,
                    request("POST", "/api/files/tree", Some(&cookie), form),
                )
                .await;
                assert_eq!(status, StatusCode::OK);
            }
        })
        .await;
        summary("list the tree (5,000 files)", &mut listing);

        let mut open = time(ROUNDS * 5, |round| {
            let (router, cookie) = (router.clone(), cookie.clone());
            let form = format!(
                "project_id={project}&file_id={}",
                files[(round * 7919) % files.len()]
            );
            async move {
                let (status, _, _) = send(
                    &router,
                    request("POST", "/api/files/open", Some(&cookie), form.into_bytes()),
                )
                .await;
                assert_eq!(status, StatusCode::OK);
            }
        })
        .await;
        summary("open a file (10 KB)", &mut open);

        let mut versions = std::collections::HashMap::new();
        let mut save = time(ROUNDS * 5, |round| {
            let (router, cookie) = (router.clone(), cookie.clone());
            let file = files[(round * 104_729) % files.len()].clone();
            let version = *versions
                .entry(file.clone())
                .and_modify(|version| *version += 1)
                .or_insert(1);
            let content = encode(&file_text(round, TOTAL_BYTES / FILES));
            let form = format!(
                "project_id={project}&file_id={file}&base_version={version}&content={content}"
            );
            async move {
                let (status, body, _) = send(
                    &router,
                    request("POST", "/api/files/save", Some(&cookie), form.into_bytes()),
                )
                .await;
                assert_eq!(status, StatusCode::OK);
                assert!(
                    body.starts_with(b"{\"Saved\""),
                    "{}",
                    String::from_utf8_lossy(&body)
                );
            }
        })
        .await;
        summary("save a file (10 KB, new revision)", &mut save);

        for (label, pattern, regex) in [
            ("search, plain text", "needle_in_the_haystack", "false"),
            (
                "search, regular expression",
                r"needle_\w+_haystack\(\)",
                "true",
            ),
        ] {
            let mut search = time(ROUNDS / 4, |_| {
                let (router, cookie) = (router.clone(), cookie.clone());
                let form = format!(
                    "project_id={project}&pattern={}&regex={regex}&case_sensitive=true",
                    encode(pattern)
                );
                async move {
                    let (status, body, _) = send(
                        &router,
                        request(
                            "POST",
                            "/api/files/search",
                            Some(&cookie),
                            form.into_bytes(),
                        ),
                    )
                    .await;
                    assert_eq!(status, StatusCode::OK);
                    let found: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(found["hits"].as_array().unwrap().len(), 1, "{found}");
                }
            })
            .await;
            summary(&format!("{label} (50 MB)"), &mut search);
        }
        database.drop_postgres_database().await;
    }
}
