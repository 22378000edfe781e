//! The admin server's HTTP listener: ZooKeeper's `JettyAdminServer`
//! (`admin.enableServer`, on by default at `0.0.0.0:8080/commands`).
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

use crate::config::AdminServerConfig;
use crate::server::CoreMsg;

/// A running admin server; dropping it stops it.
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
        let listener = TcpListener::bind(SocketAddr::new(cfg.address, cfg.port)).await?;
        let local_addr = listener.local_addr()?;
        let shared = Shared {
            core,
            command_url: cfg.command_url.clone(),
        };
        let url = &cfg.command_url;
        let router = Router::new()
            .route(url, get(list))
            .route(&format!("{url}/"), get(list))
            .route(&format!("{url}/{{*command}}"), get(command))
            .with_state(shared);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "admin server stopped");
            }
        });
        tracing::info!(%local_addr, command_url = %cfg.command_url, "admin server");
        Ok(AdminServer { local_addr, task })
    }
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
    let (reply, answer) = oneshot::channel();
    let asked = s.core.send(CoreMsg::Admin {
        command,
        args,
        reply,
    });
    match (asked, answer.await) {
        (Ok(()), Ok(json)) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        // The core has stopped: the server is shutting down.
        _ => StatusCode::SERVICE_UNAVAILABLE.into_response(),
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
}
