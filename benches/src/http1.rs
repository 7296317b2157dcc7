//! HTTP/1.1 message framing for the load generator and the upstream stub (RFC 9112): heads
//! parsed with httparse; bodies delimited by Content-Length, by the chunked transfer coding
//! (extensions and trailers allowed), or — responses only — by the connection's close. Bodies
//! are counted and discarded. One [`MessageReader`] per connection keeps the bytes read past a
//! message for the next one.

use std::ops::Range;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest accepted message head (start line and headers), bytes.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one head.
pub const MAX_HEADERS: usize = 64;
/// Longest accepted chunk-size or trailer line, bytes.
const MAX_LINE: usize = 4096;
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The socket failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection before sending any byte of a message.
    #[error("the connection closed before a message started")]
    ClosedBeforeMessage,
    /// The peer closed the connection in the middle of a message.
    #[error("the connection closed in the middle of a message")]
    Truncated,
    /// The head is not HTTP/1.x.
    #[error("malformed message head: {0}")]
    Head(httparse::Error),
    /// The head is larger than [`MAX_HEAD`].
    #[error("message head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// Content-Length is not a number, or two differ.
    #[error("invalid Content-Length")]
    ContentLength,
    /// A chunk size line, chunk terminator or trailer is malformed.
    #[error("malformed chunked body")]
    Chunked,
    /// The body exceeds the reader's bound.
    #[error("body larger than {0} bytes")]
    BodyTooLarge(u64),
    /// A request with a transfer coding other than chunked.
    #[error("unsupported transfer coding")]
    TransferCoding,
}

impl HttpError {
    /// A short closed-set name, for error counts.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::Io(_) => "read",
            HttpError::ClosedBeforeMessage => "closed",
            HttpError::Truncated => "truncated",
            HttpError::Head(_) | HttpError::HeadTooLarge => "bad_head",
            HttpError::ContentLength | HttpError::Chunked | HttpError::TransferCoding => {
                "bad_framing"
            }
            HttpError::BodyTooLarge(_) => "body_too_large",
        }
    }
}

/// What the load generator needs from a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseMeta {
    /// The final (non-1xx) status.
    pub status: u16,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
    /// Body bytes received (decoded size for chunked bodies).
    pub body_len: u64,
}

/// What the stub needs from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMeta {
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
    /// Body bytes received.
    pub body_len: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// The framing-relevant parts of a head, owned.
#[derive(Debug, Default)]
struct Head {
    /// Status code (responses).
    status: u16,
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    minor: u8,
    /// Transfer-Encoding present; `Some(true)` when its last coding is chunked.
    chunked: Option<bool>,
    content_length: Option<u64>,
    close: bool,
    keep_alive: bool,
}

impl Head {
    fn from_headers(headers: &[httparse::Header<'_>]) -> Result<Self, HttpError> {
        let mut head = Head::default();
        for h in headers {
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                let n: u64 = value
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| value.parse().ok())
                    .flatten()
                    .ok_or(HttpError::ContentLength)?;
                if head.content_length.is_some_and(|m| m != n) {
                    return Err(HttpError::ContentLength);
                }
                head.content_length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = value.rsplit(',').next().unwrap_or("").trim();
                head.chunked = Some(last.eq_ignore_ascii_case("chunked"));
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    head.close |= token.eq_ignore_ascii_case("close");
                    head.keep_alive |= token.eq_ignore_ascii_case("keep-alive");
                }
            }
        }
        Ok(head)
    }

    fn persistent(&self) -> bool {
        if self.minor >= 1 {
            !self.close
        } else {
            self.keep_alive && !self.close
        }
    }
}

/// The read side of one connection: a buffer kept across messages.
#[derive(Debug)]
pub struct MessageReader {
    buf: Vec<u8>,
    pos: usize,
    max_body: u64,
}

impl MessageReader {
    /// A reader that refuses bodies larger than `max_body` bytes.
    pub fn new(max_body: u64) -> Self {
        Self {
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            max_body,
        }
    }

    /// Forget buffered bytes (a new connection).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }

    /// Bytes received past the last message read.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    async fn fill<S: AsyncRead + Unpin>(&mut self, s: &mut S) -> Result<usize, HttpError> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        Ok(s.read_buf(&mut self.buf).await?)
    }

    /// Read one response; `head_request`: it answers a HEAD (no body whatever the headers say).
    pub async fn read_response<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        head_request: bool,
    ) -> Result<ResponseMeta, HttpError> {
        loop {
            let head = loop {
                let avail = &self.buf[self.pos..];
                if !avail.is_empty() {
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut r = httparse::Response::new(&mut headers);
                    match r.parse(avail) {
                        Ok(httparse::Status::Complete(n)) => {
                            let mut head = Head::from_headers(r.headers)?;
                            head.status = r.code.unwrap_or(0);
                            head.minor = r.version.unwrap_or(1);
                            self.pos += n;
                            break head;
                        }
                        Ok(httparse::Status::Partial) => {}
                        Err(e) => return Err(HttpError::Head(e)),
                    }
                    if avail.len() > MAX_HEAD {
                        return Err(HttpError::HeadTooLarge);
                    }
                }
                let started = self.buffered() > 0;
                if self.fill(s).await? == 0 {
                    return Err(if started {
                        HttpError::Truncated
                    } else {
                        HttpError::ClosedBeforeMessage
                    });
                }
            };
            // Interim responses (100 Continue, 103 Early Hints) precede the real one.
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            let framing = if head_request || head.status == 204 || head.status == 304 {
                Framing::None
            } else {
                match (head.chunked, head.content_length) {
                    (Some(true), _) => Framing::Chunked,
                    // A transfer coding other than chunked: the body runs to the close.
                    (Some(false), _) => Framing::Close,
                    (None, Some(n)) => Framing::Length(n),
                    (None, None) => Framing::Close,
                }
            };
            let body_len = self.skip_body(s, framing).await?;
            return Ok(ResponseMeta {
                status: head.status,
                keep_alive: framing != Framing::Close && head.persistent(),
                body_len,
            });
        }
    }

    /// Read one request (head and body). `Ok(None)`: the peer closed the connection cleanly
    /// between requests.
    pub async fn read_request<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
    ) -> Result<Option<RequestMeta>, HttpError> {
        let head = loop {
            let avail = &self.buf[self.pos..];
            if !avail.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut r = httparse::Request::new(&mut headers);
                match r.parse(avail) {
                    Ok(httparse::Status::Complete(n)) => {
                        let mut head = Head::from_headers(r.headers)?;
                        head.minor = r.version.unwrap_or(1);
                        self.pos += n;
                        break head;
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => return Err(HttpError::Head(e)),
                }
                if avail.len() > MAX_HEAD {
                    return Err(HttpError::HeadTooLarge);
                }
            }
            let started = self.buffered() > 0;
            if self.fill(s).await? == 0 {
                return if started {
                    Err(HttpError::Truncated)
                } else {
                    Ok(None)
                };
            }
        };
        let framing = match (head.chunked, head.content_length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => return Err(HttpError::TransferCoding),
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::None,
        };
        let body_len = self.skip_body(s, framing).await?;
        Ok(Some(RequestMeta {
            keep_alive: head.persistent(),
            body_len,
        }))
    }

    /// Consume exactly `n` bytes.
    async fn consume<S: AsyncRead + Unpin>(&mut self, s: &mut S, n: u64) -> Result<(), HttpError> {
        let mut left = n;
        loop {
            let take = left.min(self.buffered() as u64);
            self.pos += take as usize;
            left -= take;
            if left == 0 {
                return Ok(());
            }
            if self.fill(s).await? == 0 {
                return Err(HttpError::Truncated);
            }
        }
    }

    /// The next CRLF-terminated line (without the CRLF), as a range of the buffer that stays
    /// valid until the next read.
    async fn line<S: AsyncRead + Unpin>(&mut self, s: &mut S) -> Result<Range<usize>, HttpError> {
        loop {
            let avail = &self.buf[self.pos..];
            if let Some(i) = avail.windows(2).position(|w| w == b"\r\n") {
                let range = self.pos..self.pos + i;
                self.pos += i + 2;
                return Ok(range);
            }
            if avail.len() > MAX_LINE {
                return Err(HttpError::Chunked);
            }
            if self.fill(s).await? == 0 {
                return Err(HttpError::Truncated);
            }
        }
    }

    async fn skip_body<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        framing: Framing,
    ) -> Result<u64, HttpError> {
        match framing {
            Framing::None => Ok(0),
            Framing::Length(n) => {
                if n > self.max_body {
                    return Err(HttpError::BodyTooLarge(self.max_body));
                }
                self.consume(s, n).await?;
                Ok(n)
            }
            Framing::Close => {
                let mut total = self.buffered() as u64;
                self.pos = self.buf.len();
                loop {
                    if total > self.max_body {
                        return Err(HttpError::BodyTooLarge(self.max_body));
                    }
                    let n = self.fill(s).await?;
                    if n == 0 {
                        return Ok(total);
                    }
                    total += n as u64;
                    self.pos = self.buf.len();
                }
            }
            Framing::Chunked => {
                let mut total = 0u64;
                loop {
                    let range = self.line(s).await?;
                    let line = &self.buf[range];
                    let size_part = line.split(|b| *b == b';').next().unwrap_or(b"");
                    let size_text = std::str::from_utf8(size_part)
                        .map_err(|_| HttpError::Chunked)?
                        .trim();
                    if size_text.is_empty() || size_text.len() > 16 {
                        return Err(HttpError::Chunked);
                    }
                    let size =
                        u64::from_str_radix(size_text, 16).map_err(|_| HttpError::Chunked)?;
                    if size == 0 {
                        // Trailer section, ended by an empty line.
                        loop {
                            let r = self.line(s).await?;
                            if r.is_empty() {
                                return Ok(total);
                            }
                        }
                    }
                    total = total.saturating_add(size);
                    if total > self.max_body {
                        return Err(HttpError::BodyTooLarge(self.max_body));
                    }
                    self.consume(s, size).await?;
                    if !self.line(s).await?.is_empty() {
                        return Err(HttpError::Chunked);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;

    /// Delivers its bytes at most `step` at a time, to exercise every partial-read path.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let n = self
                .step
                .min(self.data.len() - self.at)
                .min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.data[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    fn trickle(data: &[u8], step: usize) -> Trickle {
        Trickle {
            data: data.to_vec(),
            at: 0,
            step,
        }
    }

    async fn responses(data: &[u8], step: usize) -> Vec<Result<ResponseMeta, String>> {
        let mut s = trickle(data, step);
        let mut r = MessageReader::new(1 << 20);
        let mut out = Vec::new();
        loop {
            match r.read_response(&mut s, false).await {
                Ok(m) => {
                    let more = m.keep_alive;
                    out.push(Ok(m));
                    if !more {
                        return out;
                    }
                }
                Err(HttpError::ClosedBeforeMessage) => return out,
                Err(e) => {
                    out.push(Err(e.kind().to_owned()));
                    return out;
                }
            }
        }
    }

    fn ok(status: u16, keep_alive: bool, body_len: u64) -> Result<ResponseMeta, String> {
        Ok(ResponseMeta {
            status,
            keep_alive,
            body_len,
        })
    }

    #[tokio::test]
    async fn content_length_and_chunked_back_to_back() {
        let data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
HTTP/1.1 201 Created\r\ntransfer-encoding: gzip, Chunked\r\n\r\n4;ext=1\r\nabcd\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n\
HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n\
HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}";
        for step in [1, 3, 7, 4096] {
            assert_eq!(
                responses(data, step).await,
                vec![
                    ok(200, true, 5),
                    ok(201, true, 14),
                    ok(204, true, 0),
                    ok(400, false, 2)
                ],
                "step {step}"
            );
        }
    }

    #[tokio::test]
    async fn interim_close_delimited_and_http10() {
        let data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nto the end";
        assert_eq!(responses(data, 2).await, vec![ok(200, false, 10)]);
        let data = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx";
        assert_eq!(responses(data, 64).await, vec![ok(200, false, 1)]);
        let data =
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nxHTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(
            responses(data, 64).await,
            vec![ok(200, true, 1), ok(200, false, 0)]
        );
    }

    #[tokio::test]
    async fn malformed_and_truncated() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
                "truncated",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Le", "truncated"),
            (b"NOT HTTP\r\n\r\n", "bad_head"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                "bad_framing",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "bad_framing",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "bad_framing",
            ),
        ];
        for (data, kind) in cases {
            assert_eq!(responses(data, 5).await, vec![Err(kind.to_owned())]);
        }
        let big = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n";
        assert_eq!(
            responses(big, 64).await,
            vec![Err("body_too_large".to_owned())]
        );
    }

    #[tokio::test]
    async fn requests_with_both_framings() {
        let data = b"PUT /register/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
PUT /register/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut s = trickle(data, 5);
        let mut r = MessageReader::new(1024);
        let a = r.read_request(&mut s).await.unwrap().unwrap();
        let b = r.read_request(&mut s).await.unwrap().unwrap();
        let c = r.read_request(&mut s).await.unwrap().unwrap();
        assert_eq!((a.body_len, a.keep_alive), (3, true));
        assert_eq!((b.body_len, b.keep_alive), (3, true));
        assert_eq!((c.body_len, c.keep_alive), (0, false));
        assert!(r.read_request(&mut s).await.unwrap().is_none());
    }
}
