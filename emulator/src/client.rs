//! A minimal HTTP/1.1 JSON client over one keep-alive connection, for the load generator and the
//! benchmarks. Plain `http://` on loopback only; kube-rs is the real client in the tests.

use axum::http::{Method, Request, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL is not `http://host:port`.
    #[error("unsupported server URL {0:?}: only http://HOST:PORT is supported")]
    Url(String),
    /// Connecting failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("building request: {0}")]
    Build(#[from] axum::http::Error),
    /// The kubeconfig cannot be read or names no server.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// File.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// `host:port` of an `http://host:port` URL.
pub fn host_port(url: &str) -> Result<String, ClientError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ClientError::Url(url.to_string()))?;
    let hp = rest.trim_end_matches('/');
    if hp.is_empty() || hp.contains('/') {
        return Err(ClientError::Url(url.to_string()));
    }
    Ok(hp.to_string())
}

/// The first `key:` value of a kubeconfig (YAML or JSON), unquoted.
fn kubeconfig_value(text: &str, key: &str) -> Option<String> {
    let (yaml, json) = (format!("{key}:"), format!("\"{key}\":"));
    text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches('-').trim();
        let v = l
            .strip_prefix(yaml.as_str())
            .or_else(|| l.strip_prefix(json.as_str()))?;
        Some(
            v.trim()
                .trim_matches(|c| c == '"' || c == '\'' || c == ',')
                .to_string(),
        )
    })
}

fn read_kubeconfig(path: &std::path::Path) -> Result<String, ClientError> {
    std::fs::read_to_string(path).map_err(|e| ClientError::Kubeconfig {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The `server:` of the first cluster in a kubeconfig (YAML or JSON); enough for the kubeconfig
/// the emulator writes.
pub fn server_from_kubeconfig(path: &std::path::Path) -> Result<String, ClientError> {
    kubeconfig_value(&read_kubeconfig(path)?, "server").ok_or_else(|| ClientError::Kubeconfig {
        path: path.display().to_string(),
        message: "no clusters[].cluster.server".into(),
    })
}

/// The `token:` of the first user in a kubeconfig, if any (the emulator's kubeconfigs have one;
/// it matters when the emulator has `--token` users).
pub fn token_from_kubeconfig(path: &std::path::Path) -> Result<Option<String>, ClientError> {
    Ok(kubeconfig_value(&read_kubeconfig(path)?, "token"))
}

/// One keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    token: Option<String>,
}

impl Conn {
    /// Connects to `host:port`.
    pub async fn connect(host: &str) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(host)
            .await
            .map_err(|source| ClientError::Connect {
                addr: host.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "client connection closed");
            }
        });
        Ok(Self {
            sender,
            host: host.to_string(),
            token: None,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request (for an emulator with `--token`
    /// users).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Sends one request and reads the whole response: (status, body).
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), ClientError> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "application/json");
        if let Some(t) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Full::new(body))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// POSTs a JSON value.
    pub async fn post_json(
        &mut self,
        path: &str,
        v: &serde_json::Value,
    ) -> Result<(u16, Bytes), ClientError> {
        let body = Bytes::from(serde_json::to_vec(v).expect("a Value serializes"));
        self.request(Method::POST, path, "application/json", body)
            .await
    }
}
