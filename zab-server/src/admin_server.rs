//! The HTTP listeners beside the client port: ZooKeeper's
//! `JettyAdminServer` (`admin.enableServer`, on by default at
//! `0.0.0.0:8080/commands`) and the `/metrics` endpoint of its
//! `PrometheusMetricsProvider` (off unless `metricsProvider.className`
//! names it; `0.0.0.0:7000`).
//!
//! `GET <commandURL>` lists the commands as links; `GET
//! <commandURL>/<name>?k=v` runs one on the server's core and answers its
//! JSON document ([`crate::admin`]) with status 200, whatever the command's
//! outcome, as ZooKeeper 3.8 does. Other paths are 404, other methods on a
//! command 405. Plain HTTP/1.1 only: ZooKeeper's `admin.forceHttps` and
//! `admin.portUnification` are not implemented.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::config::{AdminServerConfig, PrometheusConfig};
use crate::server::CoreMsg;

/// What an HTTP request asks of the server's core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminRequest {
    /// `/commands/<name>?<args>`: the command's JSON document.
    Command {
        name: String,
        args: BTreeMap<String, String>,
    },
    /// `/metrics?name[]=…`: the Prometheus exposition, of the named
    /// families only when `names` is not empty.
    Metrics { names: Vec<String> },
}

/// A running HTTP listener (the admin server or the metrics endpoint);
/// dropping it stops it.
pub struct AdminServer {
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Shared {
    core: mpsc::UnboundedSender<CoreMsg>,
    command_url: String,
}

impl AdminServer {
    /// Binds `cfg`'s address and serves commands through `core`.
    pub(crate) async fn start(
        cfg: &AdminServerConfig,
        core: mpsc::UnboundedSender<CoreMsg>,
    ) -> std::io::Result<AdminServer> {
        let listener = crate::listen::bind(SocketAddr::new(cfg.address, cfg.port))?;
        let local_addr = listener.local_addr()?;
        let shared = Shared {
            core,
            command_url: cfg.command_url.clone(),
        };
        let url = &cfg.command_url;
        let mut router = Router::new()
            .route(&format!("{url}/"), get(list))
            .route(&format!("{url}/{{*command}}"), get(command));
        // `admin.commandURL=/` is kept as "": the commands are at the root,
        // listed at `/` alone.
        if !url.is_empty() {
            router = router.route(url, get(list));
        }
        let router = router.with_state(shared);
        tracing::info!(%local_addr, command_url = %cfg.command_url, "admin server");
        Ok(AdminServer::serve(listener, router))
    }

    /// Binds `cfg`'s address and serves `/metrics` through `core`.
    pub(crate) async fn start_metrics(
        cfg: &PrometheusConfig,
        core: mpsc::UnboundedSender<CoreMsg>,
    ) -> std::io::Result<AdminServer> {
        let listener = crate::listen::bind(SocketAddr::new(cfg.host, cfg.port))?;
        let local_addr = listener.local_addr()?;
        let shared = Shared {
            core,
            command_url: String::new(),
        };
        let router = Router::new()
            .route("/metrics", get(metrics))
            .with_state(shared);
        tracing::info!(%local_addr, "Prometheus /metrics endpoint");
        Ok(AdminServer::serve(listener, router))
    }

    fn serve(listener: TcpListener, router: Router) -> AdminServer {
        let local_addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "HTTP listener stopped");
            }
        });
        AdminServer { local_addr, task }
    }
}

/// Asks the core and waits for its answer; `None` once the core is gone
/// (the server is shutting down).
async fn ask(core: &mpsc::UnboundedSender<CoreMsg>, request: AdminRequest) -> Option<String> {
    let (reply, answer) = oneshot::channel();
    core.send(CoreMsg::Admin { request, reply }).ok()?;
    answer.await.ok()
}

async fn list(State(s): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html;charset=utf-8")],
        crate::admin::links(&s.command_url),
    )
        .into_response()
}

async fn command(
    State(s): State<Shared>,
    Path(command): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let args = query_args(query.as_deref().unwrap_or(""));
    match ask(
        &s.core,
        AdminRequest::Command {
            name: command,
            args,
        },
    )
    .await
    {
        Some(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn metrics(State(s): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let names = form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "name[]")
        .map(|(_, v)| v.into_owned())
        .collect();
    match ask(&s.core, AdminRequest::Metrics { names }).await {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// The query's parameters, the first value of each (as ZooKeeper's
/// `CommandServlet` takes `getParameterMap()`'s first), decoded as a form.
fn query_args(query: &str) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        args.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_args_take_the_first_value_and_decode_forms() {
        let a = query_args("traceMask=306&traceMask=1&x=a+b%2Fc&flag&bad=%zz&=v");
        assert_eq!(a.get("traceMask").map(String::as_str), Some("306"));
        assert_eq!(a.get("x").map(String::as_str), Some("a b/c"));
        assert_eq!(a.get("flag").map(String::as_str), Some(""));
        assert_eq!(a.get("bad").map(String::as_str), Some("%zz"));
        assert_eq!(a.get("").map(String::as_str), Some("v"));
        assert!(query_args("").is_empty());
    }

    /// `admin.commandURL=/`: the commands are at the root (the router
    /// refused an empty route, and the server panicked at start-up).
    #[tokio::test]
    async fn commands_at_the_root_are_listed_and_served() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let cfg = crate::config::AdminServerConfig {
            address: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
            command_url: String::new(),
            ..Default::default()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = AdminServer::start(&cfg, tx).await.unwrap();
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                if let CoreMsg::Admin { reply, .. } = msg {
                    let _ = reply.send("{\"answered\":true}".into());
                }
            }
        });
        for (path, expect) in [("/", "href"), ("/ruok", "answered")] {
            let mut sock = tokio::net::TcpStream::connect(server.local_addr)
                .await
                .unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            sock.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            sock.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
            assert!(answer.contains(expect), "{path}: {answer}");
        }
    }
}
