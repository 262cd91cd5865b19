//! The accept loop on a real socket: requests are served with the peer's address, a request head
//! that never completes is cut off, and shutdown lets a request in progress finish.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use server::listen::{Limits, serve_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn router() -> Router {
    Router::new()
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "done"
            }),
        )
}

struct Running {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

async fn start(limits: Limits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(
        listener,
        router(),
        async move {
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        },
        limits,
    ));
    Running {
        address,
        stop: Some(stop),
        task,
    }
}

/// Sends one request and reads one response (its head and a `Content-Length` body).
async fn exchange(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(read > 0, "the connection closed before the answer ended");
        received.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .expect("a content-length")
                .trim()
                .parse()
                .unwrap();
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn requests_on_one_connection_are_served_with_the_peer_address() {
    let running = start(Limits::default()).await;
    let mut stream = TcpStream::connect(running.address).await.unwrap();
    let local = stream.local_addr().unwrap();
    for _ in 0..2 {
        let answer = exchange(&mut stream, "/peer").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with(&local.to_string()), "{answer}");
    }
    running.task.abort();
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off() {
    let running = start(Limits {
        header_read: Duration::from_millis(300),
        shutdown_grace: Duration::from_secs(1),
    })
    .await;
    let mut stream = TcpStream::connect(running.address).await.unwrap();
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the server still waits for the head after 5 s"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "{rest:?}"
    );
    running.task.abort();
}

#[tokio::test]
async fn shutdown_lets_a_request_in_progress_finish_and_then_stops() {
    let mut running = start(Limits::default()).await;
    let mut stream = TcpStream::connect(running.address).await.unwrap();
    let answer = tokio::spawn(async move { exchange(&mut stream, "/slow").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.stop.take().unwrap().send(()).unwrap();
    let answer = answer.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("done"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), running.task)
        .await
        .expect("serving ended after shutdown")
        .unwrap();
    assert!(
        TcpStream::connect(running.address).await.is_err(),
        "the listener is closed"
    );
}
