//! The probe's HTTP/1.1 client: one request per connection (`Connection: close`), over mTLS
//! (rustls on ring, the transport certificate presented) or plain TCP for http:// URLs. Every
//! exchange is bounded: the connect and handshake, and the whole exchange, each by a deadline;
//! the answer by size. The body is written while the answer is read, so an endpoint that
//! answers before reading a large body (413) is heard.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::args::Settings;
use super::ProbeError;

/// The largest answer read (head and body).
const MAX_ANSWER: usize = 1024 * 1024;

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: &'static str,
    /// Absolute URL.
    pub url: url::Url,
    /// Extra headers (name, value).
    pub headers: Vec<(String, String)>,
    /// Body (with a `Content-Length` when not empty or when a content type is set).
    pub body: Vec<u8>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: &'static str, url: url::Url) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// With a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// With a body of this content type.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body;
        self
    }
}

/// An answer as received.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (decoded from chunked when it was).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A string member of the JSON body.
    pub fn member(&self, name: &str) -> Option<String> {
        self.json()?.get(name)?.as_str().map(str::to_owned)
    }
}

/// Why an exchange produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// TCP connect or TLS handshake failed.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// No answer within the bound.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed while reading.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The answer is not HTTP/1.1 the probe can read.
    #[error("unreadable answer: {0}")]
    Http(String),
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A client for the endpoint and the token endpoint.
pub struct Client {
    connector: TlsConnector,
    timeout: Duration,
    connect_timeout: Duration,
}

impl Client {
    /// A client presenting the settings' transport certificate and trusting their CA bundle
    /// (or the public roots).
    pub fn new(settings: &Settings) -> Result<Self, ProbeError> {
        let mut roots = rustls::RootCertStore::empty();
        match &settings.ca_pem {
            Some(pem) => {
                for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
                    let cert = cert.map_err(|e| ProbeError::Tls(e.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|e| ProbeError::Tls(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(ProbeError::Tls("the CA bundle holds no certificate".into()));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Tls(e.to_string()))?
        .with_root_certificates(roots);
        let mut config = match &settings.identity {
            Some(id) => builder
                .with_client_auth_cert(
                    id.chain.iter().cloned().map(CertificateDer::from).collect(),
                    id.key.clone_key(),
                )
                .map_err(|e| ProbeError::Tls(e.to_string()))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            timeout: settings.timeout,
            connect_timeout: settings.connect_timeout,
        })
    }

    /// Send `request` and read the answer, within the bounds.
    pub async fn send(&self, request: &Request) -> Result<Response, ExchangeError> {
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(r) => r,
            Err(_) => Err(ExchangeError::Timeout(self.timeout)),
        }
    }

    async fn exchange(&self, request: &Request) -> Result<Response, ExchangeError> {
        let stream = self.connect(&request.url).await?;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let bytes = encode(request);
        let writer = tokio::spawn(async move {
            let written = async {
                wr.write_all(&bytes).await?;
                wr.flush().await
            }
            .await;
            (wr, written)
        });
        let answer = read_response(&mut rd).await;
        // An answer before the whole body was taken is still the answer (413 from the head).
        writer.abort();
        answer
    }

    async fn connect(&self, url: &url::Url) -> Result<Box<dyn Io>, ExchangeError> {
        let host = url
            .host_str()
            .ok_or_else(|| ExchangeError::Http("no host".into()))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| ExchangeError::Http("no port".into()))?;
        let target = format!("{host}:{port}");
        let fail = |e: String| ExchangeError::Connect(target.clone(), e);
        let connect = async {
            let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
                .await
                .map_err(|e| fail(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            if url.scheme() == "http" {
                return Ok(Box::new(tcp) as Box<dyn Io>);
            }
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                .map_err(|e| fail(e.to_string()))?;
            let tls = self
                .connector
                .connect(name, tcp)
                .await
                .map_err(|e| fail(format!("TLS: {e}")))?;
            Ok(Box::new(tls) as Box<dyn Io>)
        };
        tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| fail(format!("no connection within {:?}", self.connect_timeout)))?
    }
}

/// The request as HTTP/1.1 bytes.
fn encode(r: &Request) -> Vec<u8> {
    let mut target = r.url.path().to_owned();
    if let Some(q) = r.url.query() {
        target.push('?');
        target.push_str(q);
    }
    let host = match (r.url.host_str(), r.url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    };
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: dcrgate-probe/{}\r\nAccept: application/json\r\nConnection: close\r\n",
        r.method,
        env!("CARGO_PKG_VERSION")
    );
    let typed = r
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    for (n, v) in &r.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if typed || !r.body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&r.body);
    out
}

/// Read one final answer (interim 1xx answers skipped), at most [`MAX_ANSWER`] bytes.
async fn read_response<R: AsyncRead + Unpin>(rd: &mut R) -> Result<Response, ExchangeError> {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if buf.len() > 64 * 1024 {
                return Err(ExchangeError::Http("answer head over 64 KiB".into()));
            }
            if fill(rd, &mut buf).await? == 0 {
                return Err(ExchangeError::Http(
                    "the connection closed before an answer".into(),
                ));
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let rest = buf.split_off(head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|s| s.get(2..5))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ExchangeError::Http(format!("status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        buf = rest;
        if (100..200).contains(&status) {
            continue;
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            read_chunked(rd, buf).await?
        } else if let Some(len) = header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| ExchangeError::Http(format!("Content-Length {len:?}")))?;
            if len > MAX_ANSWER {
                return Err(ExchangeError::Http(format!("an answer of {len} bytes")));
            }
            while buf.len() < len {
                if fill(rd, &mut buf).await? == 0 {
                    return Err(ExchangeError::Http("the body was cut short".into()));
                }
            }
            buf.truncate(len);
            buf
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            while buf.len() <= MAX_ANSWER {
                match fill(rd, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            buf.truncate(MAX_ANSWER);
            buf
        };
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
}

async fn fill<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 8192];
    let n = rd.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// A chunked body, its first bytes already in `buf`.
async fn read_chunked<R: AsyncRead + Unpin>(
    rd: &mut R,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, ExchangeError> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            if buf.len() > 4096 || fill(rd, &mut buf).await? == 0 {
                return Err(ExchangeError::Http("a bad chunk size line".into()));
            }
        };
        let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ExchangeError::Http(format!("chunk size {size_text:?}")))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            return Ok(body);
        }
        if size > MAX_ANSWER.saturating_sub(body.len()) {
            return Err(ExchangeError::Http("a chunked answer over 1 MiB".into()));
        }
        while buf.len() < size + 2 {
            if fill(rd, &mut buf).await? == 0 {
                return Err(ExchangeError::Http("a chunk was cut short".into()));
            }
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(raw: &[u8]) -> Result<Response, ExchangeError> {
        let mut r = raw;
        read_response(&mut r).await
    }

    #[tokio::test]
    async fn reads_length_chunked_interim_and_closed_answers() {
        let r = parse(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}extra")
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"{}"[..]));
        let r = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let r = parse(b"HTTP/1.0 201 Created\r\n\r\nall of it")
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"all of it"[..]));
        assert!(parse(b"garbage\r\n\r\n").await.is_err());
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n";
        assert!(parse(huge).await.is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
            .await
            .is_err());
    }

    #[test]
    fn encodes_the_head_with_length_and_close() {
        let url = url::Url::parse("https://bank.example:8443/register/c1").unwrap();
        let r = Request::new("PUT", url)
            .header("Authorization", "Bearer t")
            .body("application/jwt", b"a.b.c".to_vec());
        let text = String::from_utf8(encode(&r)).unwrap();
        assert!(text.starts_with("PUT /register/c1 HTTP/1.1\r\nHost: bank.example:8443\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.contains("Content-Length: 5\r\n\r\na.b.c"));
    }
}
