//! A server's `--metrics ADDRESS` (`fibrpc serve`, [`serve`](crate::serve())): a small
//! HTTP/1.1 responder on its own port for Prometheus (`/metrics`) and health checks
//! (`/healthz`: the process is alive; `/readyz`: the server consumes its request queue). One
//! request per connection, GET or HEAD only: all a scraper or a probe needs, without an HTTP
//! framework.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fibrpc_rpc::metrics::{self, Registry};
use fibrpc_rpc::{Readiness, ServerState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head read; a scraper's is a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// How long a client may take to send its request.
const READ_LIMIT: Duration = Duration::from_secs(5);

/// Binds the endpoint's address, so that a bad one fails before the server starts.
///
/// # Errors
/// One line naming the address and why it cannot be used (in use, not local, ...).
pub async fn bind(address: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot serve metrics on {address}: {error}"))
}

/// Answers on `listener` until the process ends.
pub fn spawn(listener: TcpListener, registry: Arc<Registry>, readiness: Readiness) {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let (registry, readiness) = (registry.clone(), readiness.clone());
                    tokio::spawn(async move {
                        if let Err(error) = respond(stream, &registry, &readiness).await {
                            tracing::debug!(%error, "metrics endpoint: request not answered");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(%error, "metrics endpoint: cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
}

async fn respond(
    mut stream: TcpStream,
    registry: &Registry,
    readiness: &Readiness,
) -> std::io::Result<()> {
    let head = tokio::time::timeout(READ_LIMIT, read_head(&mut stream))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let response = route(method, path, registry, readiness);
    stream
        .write_all(&response.to_bytes(method == "HEAD"))
        .await?;
    stream.shutdown().await
}

/// The request line and headers, up to the blank line that ends them.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        if read == 0 || head.len() + read > MAX_HEAD {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut bytes = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

fn route(method: &str, path: &str, registry: &Registry, readiness: &Readiness) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::text("405 Method Not Allowed", "GET or HEAD only\n");
    }
    // A query string (`/metrics?x`) does not change the answer.
    match path.split('?').next().unwrap_or_default() {
        "/metrics" => Response {
            status: "200 OK",
            content_type: metrics::CONTENT_TYPE,
            body: metrics::render(registry),
        },
        "/healthz" => Response::text("200 OK", "ok\n"),
        "/readyz" => {
            let state = readiness.state();
            if state.is_ready() {
                Response::text("200 OK", "ready\n")
            } else {
                let body = match readiness.blocked_reason() {
                    // The broker's reason is what an operator needs to read.
                    Some(reason) if state == ServerState::Blocked => {
                        format!("not ready: blocked ({reason})\n")
                    }
                    _ => format!("not ready: {}\n", state.name()),
                };
                Response::text("503 Service Unavailable", body)
            }
        }
        _ => Response::text("404 Not Found", "try /metrics, /healthz or /readyz\n"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fibrpc_in_memory::InMemoryBroker;
    use fibrpc_rpc::{Metrics, RpcServer, ServerConfig, Service};

    use super::*;

    #[tokio::test]
    async fn paths_answer_as_documented() {
        let broker = InMemoryBroker::new();
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let config = ServerConfig {
            metrics: Some(metrics),
            ..ServerConfig::default()
        };
        let server = RpcServer::new(Arc::new(broker.connect()), config, Service::default());
        let readiness = server.readiness();

        let scraped = route("GET", "/metrics", &registry, &readiness);
        assert_eq!(scraped.status, "200 OK");
        assert!(scraped.body.contains("fibrpc_server_in_flight 0"));
        assert_eq!(
            route("GET", "/healthz", &registry, &readiness),
            Response::text("200 OK", "ok\n")
        );
        let starting = route("GET", "/readyz", &registry, &readiness);
        assert_eq!(starting.status, "503 Service Unavailable");
        assert_eq!(starting.body, "not ready: starting\n");
        assert_eq!(
            route("GET", "/nope", &registry, &readiness).status,
            "404 Not Found"
        );
        assert_eq!(
            route("POST", "/metrics", &registry, &readiness).status,
            "405 Method Not Allowed"
        );

        broker.declare_queue("rpc_queue");
        let running = server.spawn();
        running
            .readiness()
            .wait_for(fibrpc_rpc::ServerState::is_ready)
            .await;
        let ready = route("GET", "/readyz?verbose", &registry, &running.readiness());
        assert_eq!(ready, Response::text("200 OK", "ready\n"));
        running.stop().await.unwrap();
    }

    #[test]
    fn a_head_request_gets_the_headers_only() {
        let response = Response::text("200 OK", "ok\n");
        let full = String::from_utf8(response.to_bytes(false)).unwrap();
        let head = String::from_utf8(response.to_bytes(true)).unwrap();
        assert!(full.ends_with("\r\n\r\nok\n"));
        assert!(head.ends_with("Content-Length: 3\r\nConnection: close\r\n\r\n"));
    }
}
