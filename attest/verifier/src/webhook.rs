//! The optional webhook: every decision on the watch stream is also POSTed as JSON to a URL.
//!
//! Plain HTTP to a loopback address only (`http://127.0.0.1:PORT/path`, `http://[::1]:...`,
//! `http://localhost:...`): decisions name nodes and reasons, and a webhook that anyone on the
//! network could receive, or answer in place of the real one, would leak them and could be
//! spoofed. To reach a remote receiver, run a TLS-terminating proxy on the verifier's host.
//! Delivery is at most once, with a 5 s timeout; a failure is logged and the decision stays in
//! the audit trail (the durable record).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A parsed webhook target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    addr: SocketAddr,
    host: String,
    path: String,
}

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook {url:?}: only http:// to a loopback address (127.0.0.1, [::1], localhost) is supported; put a TLS proxy in front of a remote receiver")]
    NotLoopbackHttp { url: String },
    #[error("webhook {url:?}: {reason}")]
    Malformed { url: String, reason: String },
}

impl Webhook {
    /// Parses `http://HOST:PORT/PATH` with a loopback HOST.
    pub fn parse(url: &str) -> Result<Webhook, WebhookError> {
        let bad = |reason: &str| WebhookError::Malformed {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| WebhookError::NotLoopbackHttp {
                url: url.to_string(),
            })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(bad("the path has spaces or control characters"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad("bad port"))?)
            }
            _ => (authority, 80),
        };
        let ip: IpAddr = match host {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            h => h
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| WebhookError::NotLoopbackHttp {
                    url: url.to_string(),
                })?,
        };
        if !ip.is_loopback() {
            return Err(WebhookError::NotLoopbackHttp {
                url: url.to_string(),
            });
        }
        Ok(Webhook {
            addr: SocketAddr::new(ip, port),
            host: authority.to_string(),
            path: path.to_string(),
        })
    }

    /// POSTs `body` (JSON); returns the HTTP status code.
    pub async fn post(&self, body: &str) -> Result<u16, String> {
        let send = async {
            let mut stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            let request = format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\nUser-Agent: warrant-verifier\r\n\r\n{}",
                self.path,
                self.host,
                body.len(),
                body
            );
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut head = vec![0u8; 64];
            let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
            let line = String::from_utf8_lossy(head.get(..n).unwrap_or_default()).to_string();
            line.split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
        };
        tokio::time::timeout(Duration::from_secs(5), send)
            .await
            .map_err(|_| "no answer within 5 s".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_is_accepted() {
        let w = Webhook::parse("http://127.0.0.1:8080/hooks/warrant").unwrap();
        assert_eq!(w.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(w.path, "/hooks/warrant");
        assert!(Webhook::parse("http://localhost:9/").is_ok());
        assert!(Webhook::parse("http://[::1]:9/x").is_ok());
        for bad in [
            "https://127.0.0.1:8080/",
            "http://10.0.0.1:8080/",
            "http://example.com/",
            "ftp://127.0.0.1/",
        ] {
            assert!(
                matches!(
                    Webhook::parse(bad),
                    Err(WebhookError::NotLoopbackHttp { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Webhook::parse("http://127.0.0.1:notaport/"),
            Err(WebhookError::Malformed { .. })
        ));
        assert!(matches!(
            Webhook::parse("http://127.0.0.1:1/a b"),
            Err(WebhookError::Malformed { .. })
        ));
    }
}
