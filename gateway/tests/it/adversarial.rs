//! The adversarial suite: one place that throws every known attack at a real gateway process,
//! grouped by family (JWT, HTTP framing, key hosts, upstream faults), one gateway per family.
//!
//! Every case shows three things: the attack is never forwarded (the stand-in registry's count
//! does not move, or it sees exactly the one compliant request and never the smuggled one); it
//! gets a clear answer (the gateway's RFC 7591 JSON error, or — for HTTP that pingora refuses
//! before the gateway's phases run — pingora's own bare 400 and a closed connection, as noted
//! per case); and the process is unharmed (afterwards a compliant request still gets 200 and the
//! process is still running). After each family, `/metrics` must have counted the rejections
//! and must carry neither the ClientId nor any of the attack strings.

use crate::common;
mod holes;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{assert_rejection, Harness, Put, Samples, CLIENT_ID, IO_TIMEOUT, KID, TOKEN};
use dcrgate_certs::RsaSigningKey;
use dcrgate_sandbox::http1::{read_response, RawResponse};
use dcrgate_sandbox::keyhost::{KeyHost, Serve};
use dcrgate_sandbox::registry::Behaviour;
use dcrgate_sandbox::tpp::unsigned;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// `limits.max_body_bytes` in the sandbox configuration (the default).
const MAX_BODY: usize = 64 * 1024;
/// Ten megabytes: the size of the oversized bodies.
const TEN_MB: usize = 10 * 1024 * 1024;
/// The ClientId a smuggled request names; the registry must never see it.
const SMUGGLED_CLIENT: &str = "smuggled-victim";

// ---------------------------------------------------------------------------------------------
// Shared checks
// ---------------------------------------------------------------------------------------------

/// One refused request: what is sent, and the gateway's answer it must get.
struct Refusal {
    /// What the case is (shown on failure).
    name: String,
    /// The request body (`PUT /register/{CLIENT_ID}`, bearer, `application/jwt`).
    body: String,
    /// Expected status.
    status: u16,
    /// Expected RFC 7591 `error`.
    error: &'static str,
    /// A word the `error_description` must contain, if any.
    mentions: Option<&'static str>,
}

impl Refusal {
    fn new(name: impl Into<String>, body: String, status: u16, error: &'static str) -> Self {
        Self {
            name: name.into(),
            body,
            status,
            error,
            mentions: None,
        }
    }

    fn mentioning(mut self, word: &'static str) -> Self {
        self.mentions = Some(word);
        self
    }
}

/// The failed cases of a family, reported together at its end, so that one failing case does
/// not hide the others (and the process-unharmed and metrics checks still run).
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    /// Run the (synchronous) checks of one case, recording a failure instead of unwinding.
    fn check(&mut self, name: &str, checks: impl FnOnce()) {
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(checks)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            self.0.push(format!("{name}: {message}"));
        }
    }

    /// Fail the test if any case failed, naming each.
    #[track_caller]
    fn assert_none(&self) {
        assert!(
            self.0.is_empty(),
            "{} case(s) failed:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Whether `r` is one of the gateway's own RFC 7591 JSON refusals.
fn is_gateway_refusal(r: &RawResponse) -> bool {
    r.status >= 400 && r.error_code().is_some()
}

/// Send every case and check its answer; none of them may reach the registry. Returns how
/// many were answered with the gateway's own JSON refusal.
async fn assert_refusals(h: &Harness, cases: &[Refusal], failures: &mut Failures) -> usize {
    let mut refused = 0;
    for case in cases {
        let before = h.registry.count();
        let r = h.put_jwt(&case.body).await;
        refused += usize::from(is_gateway_refusal(&r));
        let after = h.registry.count();
        failures.check(&case.name, || {
            assert_eq!(
                r.status,
                case.status,
                "{}",
                String::from_utf8_lossy(&r.body)
            );
            let description = assert_rejection(&r, case.status, case.error);
            if let Some(word) = case.mentions {
                assert!(
                    description.contains(word),
                    "the description does not mention {word:?}: {description}"
                );
            }
            assert_eq!(after, before, "forwarded: {:?}", h.registry.requests());
        });
    }
    refused
}

/// The process survived: a compliant request is still accepted and forwarded byte for byte,
/// and the process is still running.
async fn assert_unharmed(h: &mut Harness) {
    let before = h.registry.count();
    let jwt = h.compliant_jwt();
    let r = h.put_jwt(&jwt).await;
    assert_eq!(
        r.status,
        200,
        "a compliant request after the attacks: {}",
        String::from_utf8_lossy(&r.body)
    );
    let seen = h.registry.requests();
    assert_eq!(seen.len(), before + 1, "{seen:?}");
    let last = &seen[seen.len() - 1];
    assert_eq!(last.target, format!("/register/{CLIENT_ID}"));
    assert_eq!(last.body.as_ref(), jwt.as_bytes());
    assert!(h.gateway.running(), "the gateway process is gone");
}

/// Sum of every `dcrgate_rejections_total` series whose labels contain `filter`.
fn rejections(samples: &Samples, filter: &str) -> f64 {
    samples
        .0
        .iter()
        .filter(|(series, _)| {
            series.starts_with("dcrgate_rejections_total{") && series.contains(filter)
        })
        .map(|(_, v)| v)
        .sum()
}

/// `/metrics` counted at least `total` rejections and at least the given number per reason,
/// and no line carries the ClientId or any of `secrets`.
async fn check_metrics(
    h: &Harness,
    total: usize,
    reasons: &[(&str, usize)],
    secrets: &[&str],
    failures: &mut Failures,
) {
    let total = total as f64;
    let reason_label = |r: &str| format!("reason=\"{r}\"");
    let (samples, text) = h
        .metrics_when(|s| {
            rejections(s, "") >= total
                && reasons
                    .iter()
                    .all(|(r, n)| rejections(s, &reason_label(r)) >= *n as f64)
        })
        .await;
    failures.check("metrics", || {
        assert!(
            rejections(&samples, "") >= total,
            "fewer than {total} rejections counted:\n{text}"
        );
        for (reason, n) in reasons {
            assert!(
                rejections(&samples, &reason_label(reason)) >= *n as f64,
                "fewer than {n} rejections with reason {reason}:\n{text}"
            );
        }
        for line in text.lines() {
            assert!(
                !line.contains(CLIENT_ID),
                "a metric line names the ClientId: {line}"
            );
            for secret in secrets {
                assert!(
                    !line.contains(secret),
                    "a metric line carries the attack string {secret:?}: {line}"
                );
            }
        }
    });
}

/// Write `raw` on a new connection while reading the answer (the gateway may answer and close
/// before the whole request is written).
async fn send_while_reading(h: &Harness, raw: Vec<u8>) -> Result<RawResponse, String> {
    let tls = h.client.connect().await.map_err(|e| e.to_string())?;
    let (mut rd, mut wr) = tokio::io::split(tls);
    let writer = tokio::spawn(async move {
        for part in raw.chunks(16 * 1024) {
            if wr.write_all(part).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
    });
    let answer = tokio::time::timeout(IO_TIMEOUT, read_response(&mut rd)).await;
    writer.abort();
    answer
        .map_err(|_| format!("no answer within {IO_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())
}

/// Base64url of `bytes`.
fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------------------------
// 1. JWT attacks
// ---------------------------------------------------------------------------------------------

/// `header.payload` signed with ring's RSASSA-PKCS1-v1_5 SHA-256 (a genuine RS256 signature).
fn rs256(key: &RsaSigningKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let pair = RsaKeyPair::from_pkcs8(&key.pkcs8_der).expect("key");
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!("{input}.{}", b64(sig))
}

/// `header.payload` with an HMAC-SHA256 tag keyed with `secret`.
fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// Compliant claims (as JSON text) with `extra` spliced in as one more member.
fn claims_text_with(h: &Harness, extra: &str) -> String {
    let claims = h.claims().to_string();
    format!("{},{extra}}}", &claims[..claims.len() - 1])
}

/// The standard header, as JSON text.
fn header_text() -> String {
    format!(r#"{{"alg":"PS256","kid":"{KID}","typ":"JWT"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_attacks_are_refused_and_never_forwarded() {
    let mut h = Harness::start().await;
    let claims = h.claims();
    let key = h.tpp.signer.key.clone();
    let bad = "invalid_client_metadata";
    let mut cases = Vec::new();

    // alg none in every case, with and without a signature part.
    for alg in ["none", "None", "NONE", "nOnE"] {
        for sig in [&b""[..], b"signature"] {
            cases.push(
                Refusal::new(
                    format!("alg {alg}, signature {:?}", String::from_utf8_lossy(sig)),
                    unsigned(&json!({"alg": alg, "kid": KID}), &claims, sig),
                    400,
                    bad,
                )
                .mentioning("alg none"),
            );
        }
    }

    // alg none with the signature part left out altogether (two parts): not a compact JWS.
    let none = unsigned(&json!({"alg": "none", "kid": KID}), &claims, b"");
    cases.push(
        Refusal::new(
            "alg none, two parts",
            none.trim_end_matches('.').to_owned(),
            400,
            bad,
        )
        .mentioning("compact JWS"),
    );

    // HS256 keyed with the TPP's public key: its JWK text, and its modulus.
    let hs_header = json!({"alg": "HS256", "kid": KID, "typ": "JWT"});
    for (what, secret) in [
        ("JWK JSON", key.public_jwk().into_bytes()),
        ("modulus", key.n.clone()),
    ] {
        cases.push(
            Refusal::new(
                format!("HS256 keyed with the public {what}"),
                hs256(&secret, &hs_header, &claims),
                400,
                bad,
            )
            .mentioning("HS256"),
        );
    }

    // A genuine RS256 signature by the TPP's own key: PS256 is what the profile requires.
    cases.push(
        Refusal::new(
            "RS256 with a valid signature",
            rs256(
                &key,
                &json!({"alg": "RS256", "kid": KID, "typ": "JWT"}),
                &claims,
            ),
            400,
            bad,
        )
        .mentioning("RS256"),
    );

    // Hostile kids, signed by the real key: looked up in the key set as opaque strings (no
    // such key), or refused for their length.
    for kid in ["../../etc/passwd", "' OR 1=1 --"] {
        cases.push(
            Refusal::new(
                format!("kid {kid:?}"),
                h.tpp
                    .sign_with_header(&json!({"alg": "PS256", "kid": kid}), &claims),
                400,
                bad,
            )
            .mentioning("kid"),
        );
    }
    let huge_kid = format!("hugekid{}", "k".repeat(10 * 1024));
    cases.push(
        Refusal::new(
            "10 KB kid",
            h.tpp
                .sign_with_header(&json!({"alg": "PS256", "kid": huge_kid}), &claims),
            400,
            bad,
        )
        .mentioning("kid"),
    );

    // ES256 with an all-zero signature: the profile accepts PS256 only, so the algorithm alone
    // refuses it (the zero signature is never looked at).
    cases.push(
        Refusal::new(
            "ES256, all-zero signature",
            unsigned(
                &json!({"alg": "ES256", "kid": KID, "typ": "JWT"}),
                &claims,
                &[0u8; 64],
            ),
            400,
            bad,
        )
        .mentioning("ES256"),
    );

    // Header members dcrgate does not support, each on a genuine PS256 signature.
    for (what, header, word) in [
        (
            "crit",
            json!({"alg": "PS256", "kid": KID, "crit": ["exp"], "exp": 1}),
            "crit",
        ),
        (
            "b64 false",
            json!({"alg": "PS256", "kid": KID, "b64": false}),
            "b64",
        ),
        (
            "nested JWT",
            json!({"alg": "PS256", "kid": KID, "cty": "JWT"}),
            "nested",
        ),
        (
            "nested jwt (lower case)",
            json!({"alg": "PS256", "kid": KID, "cty": "jwt"}),
            "nested",
        ),
    ] {
        cases.push(
            Refusal::new(what, h.tpp.sign_with_header(&header, &claims), 400, bad).mentioning(word),
        );
    }

    // Duplicate member names (raw JSON bytes, genuinely signed).
    let claims_text = claims.to_string();
    cases.push(
        Refusal::new(
            "duplicate alg in the header",
            h.tpp.sign_raw(
                format!(r#"{{"alg":"PS256","kid":"{KID}","alg":"none"}}"#).as_bytes(),
                claims_text.as_bytes(),
            ),
            400,
            bad,
        )
        .mentioning("duplicate"),
    );
    cases.push(
        Refusal::new(
            "duplicate client_id in the claims",
            h.tpp.sign_raw(
                header_text().as_bytes(),
                claims_text_with(&h, r#""client_id":"someone-else""#).as_bytes(),
            ),
            400,
            bad,
        )
        .mentioning("duplicate"),
    );

    // Deep nesting that fits in the body bound: refused by the JSON depth limit, not a crash.
    let depth = 23_000;
    let balanced = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    cases.push(
        Refusal::new(
            "23k nested arrays in a claim",
            h.tpp.sign_raw(
                header_text().as_bytes(),
                claims_text_with(&h, &format!(r#""deep":{balanced}"#)).as_bytes(),
            ),
            400,
            bad,
        )
        .mentioning("payload"),
    );
    cases.push(
        Refusal::new(
            "45k unclosed arrays in a claim",
            h.tpp.sign_raw(
                header_text().as_bytes(),
                claims_text_with(&h, &format!(r#""deep":{}"#, "[".repeat(45_000))).as_bytes(),
            ),
            400,
            bad,
        )
        .mentioning("payload"),
    );
    cases.push(
        Refusal::new(
            "20k nested arrays in the header",
            h.tpp.sign_raw(
                format!(
                    r#"{{"alg":"PS256","kid":"{KID}","x":{}1{}}}"#,
                    "[".repeat(20_000),
                    "]".repeat(20_000)
                )
                .as_bytes(),
                claims_text.as_bytes(),
            ),
            400,
            bad,
        )
        .mentioning("header"),
    );

    let mut failures = Failures::default();
    let mut refused = assert_refusals(&h, &cases, &mut failures).await;

    // Oversized bodies: refused by the body bound before any parsing.
    let deep = h.tpp.sign_raw(
        header_text().as_bytes(),
        claims_text_with(&h, &format!(r#""deep":{}"#, "[".repeat(100_000))).as_bytes(),
    );
    let padding = "A".repeat(TEN_MB * 3 / 4);
    let ten_mb = h.tpp.sign(&h.claims_with(|m| {
        m.insert("padding".into(), json!(padding));
    }));
    assert!(deep.len() > MAX_BODY && ten_mb.len() >= TEN_MB);
    let oversized = [
        // 100k `[` in a claim does not fit in the 64 KiB body: the size bound answers first.
        (
            "100k nested arrays in a claim (over the body bound)",
            Put::jwt(&deep).bytes(),
            false,
        ),
        // 10 MB of claims with the length declared: 413 from the head alone, before a single
        // body byte is sent.
        (
            "10 MB of claims, Content-Length declared",
            Put::jwt(&ten_mb).bytes(),
            true,
        ),
        // The same 10 MB chunked (no length to refuse up front): cut at the bound.
        (
            "10 MB of claims, chunked",
            chunked_put(ten_mb.as_bytes(), 64 * 1024),
            false,
        ),
    ];
    for (name, raw, head_only) in oversized {
        let before = h.registry.count();
        let answer = if head_only {
            let head_len = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
            head_only_answer(&h, &raw[..head_len]).await
        } else {
            send_while_reading(&h, raw).await
        };
        let after = h.registry.count();
        refused += usize::from(answer.as_ref().is_ok_and(is_gateway_refusal));
        failures.check(name, || {
            let r = answer.expect("an answer");
            let d = assert_rejection(&r, 413, "invalid_request");
            assert!(d.contains(&MAX_BODY.to_string()), "{d}");
            assert_eq!(after, before, "forwarded");
        });
    }

    assert_unharmed(&mut h).await;
    check_metrics(
        &h,
        refused,
        &[
            ("jws_alg_none", 8),
            ("jws_alg_symmetric", 2),
            ("jws_alg", 2),
            ("jws_kid", 1),
            ("unknown_kid", 2),
            ("jws_unsupported", 4),
            ("jws_malformed", 6),
            ("body_too_large", 3),
        ],
        &["passwd", "1=1", "hugekid", "kkkkkkkk", "padding"],
        &mut failures,
    )
    .await;
    failures.assert_none();
}

/// Send only a request head (no body byte) and wait up to 5 s for the answer.
async fn head_only_answer(h: &Harness, head: &[u8]) -> Result<RawResponse, String> {
    let mut tls = h.client.connect().await.map_err(|e| e.to_string())?;
    tls.write_all(head).await.map_err(|e| e.to_string())?;
    tls.flush().await.map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(5), read_response(&mut tls))
        .await
        .map_err(|_| "no answer within 5 s without the body".to_owned())?
        .map_err(|e| e.to_string())
}

/// `PUT /register/{CLIENT_ID}` with `body` in chunks of `chunk` bytes.
fn chunked_put(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = format!(
        "PUT /register/{CLIENT_ID} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/jwt\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(&chunked(body, chunk));
    out
}

/// `body` as a chunked message body, with the last chunk.
fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

// ---------------------------------------------------------------------------------------------
// 2. HTTP tricks
// ---------------------------------------------------------------------------------------------

/// The gateway's answers on one connection.
struct Exchange {
    /// Responses, in order.
    responses: Vec<RawResponse>,
    /// Whether the gateway closed the connection after them.
    closed: bool,
}

/// Reads pipelined responses from one stream (bytes read past one response are kept for the
/// next).
struct ResponseReader<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + Unpin> ResponseReader<S> {
    /// Read more bytes; false at end of stream (or on an error, which ends it too).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response, or `None` when the stream ended first.
    async fn next(&mut self) -> Option<RawResponse> {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let start = head_end + 4;
        let body = match length {
            Some(len) => {
                while self.buf.len() < start + len {
                    if !self.fill().await {
                        break;
                    }
                }
                let end = (start + len).min(self.buf.len());
                let body = self.buf[start..end].to_vec();
                self.buf.drain(..end);
                body
            }
            None => {
                while self.fill().await {}
                let body = self.buf[start..].to_vec();
                self.buf.clear();
                body
            }
        };
        Some(RawResponse {
            status,
            headers,
            body,
        })
    }
}

/// Send `raw` on a new connection and collect every answer until the gateway closes the
/// connection or stays silent for `idle`.
async fn exchange(h: &Harness, raw: &[u8], idle: Duration) -> Exchange {
    let mut tls = h.client.connect().await.expect("handshake");
    // A refusal may close the connection before everything is written; that is fine.
    let _ = tls.write_all(raw).await;
    let _ = tls.flush().await;
    let mut reader = ResponseReader {
        stream: tls,
        buf: Vec::new(),
    };
    let mut responses = Vec::new();
    let mut closed = false;
    while responses.len() < 4 {
        let within = if responses.is_empty() {
            IO_TIMEOUT
        } else {
            idle
        };
        match tokio::time::timeout(within, reader.next()).await {
            Ok(Some(r)) => responses.push(r),
            Ok(None) => {
                closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    Exchange { responses, closed }
}

/// What the gateway answers to one request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// The gateway's own RFC 7591 JSON refusal: status and `error`.
    Gateway(u16, &'static str),
    /// pingora's bare 400 (no JSON body): it refused malformed HTTP before any gateway phase
    /// ran, and closes the connection.
    Pingora400,
    /// Forwarded: the registry's 200, relayed.
    Forwarded,
}

/// One HTTP-level case, sent as raw bytes on its own connection.
struct HttpCase {
    name: String,
    raw: Vec<u8>,
    /// The answer to the request as sent.
    first: Answer,
    /// A request pipelined behind the first, if the bytes carry one: if it is answered at all,
    /// this must be the answer. Today pingora answers the first request and closes the
    /// connection without reading what was pipelined behind a request with a body (RFC 9112
    /// §9.6 lets a server close; the client retries), so it is usually not answered.
    pipelined: Option<Answer>,
    /// Whether the gateway must close the connection after its answers.
    closes: bool,
}

impl HttpCase {
    fn new(name: impl Into<String>, raw: Vec<u8>, first: Answer) -> Self {
        Self {
            name: name.into(),
            raw,
            first,
            pipelined: None,
            closes: matches!(first, Answer::Pingora400),
        }
    }

    fn pipelined(mut self, answer: Answer) -> Self {
        self.pipelined = Some(answer);
        self
    }

    fn closing(mut self) -> Self {
        self.closes = true;
        self
    }
}

/// `PUT target` with `Host: localhost`, exactly these header lines after it, then `body`.
fn raw(target: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
    raw_for_host("localhost", target, headers, body)
}

/// `PUT target` with this `Host`, exactly these header lines after it, then `body`.
fn raw_for_host(host: &str, target: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
    let mut out = format!("PUT {target} HTTP/1.1\r\nHost: {host}\r\n");
    for line in headers {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `Content-Type` and `Authorization` lines of a compliant request.
fn std_headers() -> Vec<String> {
    vec![
        "Content-Type: application/jwt".to_owned(),
        format!("Authorization: Bearer {TOKEN}"),
    ]
}

/// `std_headers` plus `more`.
fn headers_with(more: &[String]) -> Vec<String> {
    let mut v = std_headers();
    v.extend_from_slice(more);
    v
}

/// Check one response against what was expected.
#[track_caller]
fn assert_answer(which: &str, r: &RawResponse, expected: Answer) {
    let body = String::from_utf8_lossy(&r.body);
    match expected {
        Answer::Gateway(status, error) => {
            assert_eq!(r.status, status, "{which}: {body}");
            assert_rejection(r, status, error);
        }
        Answer::Pingora400 => {
            assert_eq!(r.status, 400, "{which}: {body}");
            // Not the gateway's JSON: pingora answered before the request reached it.
            assert!(r.json().is_none(), "{which}: {body}");
        }
        Answer::Forwarded => {
            assert_eq!(r.status, 200, "{which}: {body}");
            assert_eq!(r.header("x-registry"), Some("stand-in"), "{which}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tricks_never_smuggle_anything_to_the_registry() {
    let mut h = Harness::start().await;
    let jwt = h.compliant_jwt();
    let body = jwt.as_bytes();
    let len = body.len();
    // What a smuggler hides behind the first request: a request for another client that would
    // be refused if parsed as a request, and that the registry must never see raw.
    let smuggled = Put::jwt(body)
        .client_id(SMUGGLED_CLIENT)
        .headers(&[("X-Smuggled", "yes")])
        .bytes();
    let chunked_jwt = chunked(body, 97);
    let with_tail = |framed: &[u8]| {
        let mut v = framed.to_vec();
        v.extend_from_slice(&smuggled);
        v
    };

    let target = format!("/register/{CLIENT_ID}");
    let cl = format!("Content-Length: {len}");
    let mut cases = vec![
        // CL.TE: Content-Length covers the smuggled request too; Transfer-Encoding ends the
        // body before it. pingora frames by Transfer-Encoding (RFC 9112 §6.3), drops the
        // Content-Length and closes the connection after answering (§6.1): the compliant
        // request is handled once, re-framed towards the registry, and the tail is never
        // parsed.
        HttpCase::new(
            "Content-Length then Transfer-Encoding (CL.TE)",
            raw(
                &target,
                &headers_with(&[
                    format!("Content-Length: {}", chunked_jwt.len() + smuggled.len()),
                    "Transfer-Encoding: chunked".to_owned(),
                ]),
                &with_tail(&chunked_jwt),
            ),
            Answer::Forwarded,
        )
        .closing(),
        // TE.CL: the headers in the other order, Content-Length shorter than the chunked body.
        HttpCase::new(
            "Transfer-Encoding then Content-Length (TE.CL)",
            raw(
                &target,
                &headers_with(&[
                    "Transfer-Encoding: chunked".to_owned(),
                    "Content-Length: 4".to_owned(),
                ]),
                &with_tail(&chunked_jwt),
            ),
            Answer::Forwarded,
        )
        .closing(),
        // Two identical Content-Length headers are one value (RFC 9110 §8.6): the request is
        // framed by it, and what follows the body is a pipelined request of its own.
        HttpCase::new(
            "two identical Content-Length headers",
            raw(
                &target,
                &headers_with(&[cl.clone(), cl.clone()]),
                &with_tail(body),
            ),
            Answer::Forwarded,
        )
        .pipelined(Answer::Gateway(400, "invalid_client_metadata")),
        // Two different Content-Length values cannot be reconciled: pingora refuses the head.
        HttpCase::new(
            "two different Content-Length headers",
            raw(
                &target,
                &headers_with(&[
                    cl.clone(),
                    format!("Content-Length: {}", len + smuggled.len()),
                ]),
                &with_tail(body),
            ),
            Answer::Pingora400,
        ),
        // A Content-Length that is not plain digits.
        HttpCase::new(
            "Content-Length with a sign",
            raw(
                &target,
                &headers_with(&[format!("Content-Length: +{len}")]),
                body,
            ),
            Answer::Pingora400,
        ),
        // A final transfer coding other than chunked leaves no length: pingora refuses it.
        HttpCase::new(
            "Transfer-Encoding: chunked, identity",
            raw(
                &target,
                &headers_with(&["Transfer-Encoding: chunked, identity".to_owned()]),
                &chunked_jwt,
            ),
            Answer::Pingora400,
        ),
        // obs-fold: a header line continued on the next with leading whitespace (RFC 9112
        // §5.2); pingora's parser refuses it.
        HttpCase::new(
            "obs-fold continuation line",
            raw(
                &target,
                &[
                    "Content-Type: application/jwt".to_owned(),
                    "Authorization: Bearer".to_owned(),
                    format!(" {TOKEN}"),
                    cl.clone(),
                ],
                body,
            ),
            Answer::Pingora400,
        ),
        // Absolute-form target whose authority agrees with Host: the gateway's own refusal.
        HttpCase::new(
            "absolute-form target, Host agrees",
            raw_for_host(
                "evil.example",
                &format!("https://evil.example{target}"),
                &headers_with(std::slice::from_ref(&cl)),
                body,
            ),
            Answer::Gateway(400, "invalid_request"),
        )
        .closing(),
        // Absolute-form target whose authority disagrees with Host: pingora refuses the head
        // as ambiguous before any gateway phase runs.
        HttpCase::new(
            "absolute-form target, Host disagrees",
            raw(
                &format!("https://evil.example{target}"),
                &headers_with(std::slice::from_ref(&cl)),
                body,
            ),
            Answer::Pingora400,
        ),
        // One 100 KB header, the bearer token: over the head bound before the token is read.
        HttpCase::new(
            "100 KB Authorization header",
            raw(
                &target,
                &[
                    "Content-Type: application/jwt".to_owned(),
                    format!("Authorization: Bearer {}", "t".repeat(100 * 1024)),
                    cl.clone(),
                ],
                body,
            ),
            Answer::Gateway(431, "invalid_request"),
        )
        .closing(),
        // One 100 KB header the gateway has no rule for, on an otherwise compliant request: an
        // edge gateway must not pass 100 KB of client-chosen header bytes to the registry
        // (RFC 6585 §5: 431 Request Header Fields Too Large).
        HttpCase::new(
            "100 KB X-Padding header",
            raw(
                &target,
                &headers_with(&[format!("X-Padding: {}", "p".repeat(100 * 1024)), cl.clone()]),
                body,
            ),
            Answer::Gateway(431, "invalid_request"),
        ),
        // 100 small headers: within what pingora parses, over limits.max_headers (64): the
        // field-count bound answers 431 even though every field is small.
        HttpCase::new(
            "100 headers",
            raw(
                &target,
                &headers_with(
                    &(0..100)
                        .map(|i| format!("X-Filler-{i}: {i}"))
                        .chain([cl.clone()])
                        .collect::<Vec<_>>(),
                ),
                body,
            ),
            Answer::Gateway(431, "invalid_request"),
        ),
        // 1000 headers: more than pingora parses (256); refused before any gateway phase.
        HttpCase::new(
            "1000 headers",
            raw(
                &target,
                &headers_with(
                    &(0..1000)
                        .map(|i| format!("X-Filler-{i}: {i}"))
                        .chain([cl.clone()])
                        .collect::<Vec<_>>(),
                ),
                body,
            ),
            Answer::Pingora400,
        ),
        // A second request inside the declared body: the body is then not a compact JWS.
        HttpCase::new(
            "a request smuggled inside the body",
            {
                let mut inner = body.to_vec();
                inner.extend_from_slice(b"\r\n");
                inner.extend_from_slice(&smuggled);
                raw(
                    &target,
                    &headers_with(&[format!("Content-Length: {}", inner.len())]),
                    &inner,
                )
            },
            Answer::Gateway(400, "invalid_client_metadata"),
        ),
        // A compliant request with a second one pipelined in the same bytes: the second is a
        // request of its own, never forwarded without the whole admission (which refuses it:
        // another client's ClientId).
        HttpCase::new(
            "a request pipelined behind a compliant one",
            with_tail(&Put::jwt(body).bytes()),
            Answer::Forwarded,
        )
        .pipelined(Answer::Gateway(400, "invalid_client_metadata")),
        // The same behind a refused request.
        HttpCase::new(
            "a request pipelined behind a refused one",
            with_tail(&Put::jwt(b"not.a.jws").bytes()),
            Answer::Gateway(400, "invalid_client_metadata"),
        )
        .pipelined(Answer::Gateway(400, "invalid_client_metadata")),
    ];

    // `..` and `%2e%2e` in the path, with a compliant body and token: refused by routing (a
    // ClientId is unreserved characters and not only dots; anything with a `/` is no route).
    for (path, status) in [
        ("/register/..".to_owned(), 400),
        ("/register/%2e%2e".to_owned(), 400),
        ("/register/%2E%2E".to_owned(), 400),
        ("/register/%2e%2e%2fadmin".to_owned(), 400),
        ("/register/..%2f..%2fetc%2fpasswd".to_owned(), 400),
        (format!("/register/../register/{CLIENT_ID}"), 404),
        (format!("/../register/{CLIENT_ID}"), 404),
        (format!("/%2e%2e/register/{CLIENT_ID}"), 404),
        (format!("/register/./{CLIENT_ID}"), 404),
    ] {
        cases.push(
            HttpCase::new(
                format!("path {path}"),
                raw(&path, &headers_with(std::slice::from_ref(&cl)), body),
                Answer::Gateway(status, "invalid_request"),
            )
            .closing(),
        );
    }

    let mut failures = Failures::default();
    let mut refused = 0;
    for case in &cases {
        let before = h.registry.count();
        let ex = exchange(&h, &case.raw, Duration::from_millis(1500)).await;
        let seen = h.registry.requests();
        refused += ex
            .responses
            .iter()
            .filter(|r| is_gateway_refusal(r))
            .count();
        failures.check(&case.name, || {
            let first = ex
                .responses
                .first()
                .unwrap_or_else(|| panic!("no answer (closed: {})", ex.closed));
            assert_answer("first", first, case.first);
            match (case.pipelined, ex.responses.get(1)) {
                (Some(expected), Some(second)) => assert_answer("pipelined", second, expected),
                (Some(_), None) => assert!(ex.closed, "the pipelined request was left hanging"),
                (None, None) => {}
                (None, Some(_)) => panic!(
                    "more answers than requests: {:?}",
                    ex.responses.iter().map(|r| r.status).collect::<Vec<_>>()
                ),
            }
            assert!(ex.responses.len() <= 2, "{} answers", ex.responses.len());
            if case.closes {
                assert!(ex.closed, "the connection was kept open");
            }
            // The registry saw the one compliant request (when it was answered 200) and
            // nothing else: never the smuggled request, never a body but the verified one.
            let forwarded = usize::from(matches!(case.first, Answer::Forwarded));
            assert_eq!(
                seen.len(),
                before + forwarded,
                "the registry saw {:?}",
                &seen[before..]
            );
            for req in &seen[before..] {
                assert_eq!(req.target, target);
                assert_eq!(req.body.as_ref(), body);
                assert!(
                    !req.headers.iter().any(|(n, _)| n == "x-smuggled"),
                    "{:?}",
                    req.headers
                );
                // Unambiguous framing towards the registry.
                assert!(
                    req.header("content-length").is_none()
                        || req.header("transfer-encoding").is_none(),
                    "forwarded with both Content-Length and Transfer-Encoding: {:?}",
                    req.headers
                );
            }
        });
    }
    failures.check("the smuggled request", || {
        let seen = h.registry.requests();
        assert!(
            !seen.iter().any(|r| r.target.contains(SMUGGLED_CLIENT)),
            "reached the registry: {seen:?}"
        );
    });

    assert_unharmed(&mut h).await;
    check_metrics(
        &h,
        refused,
        &[
            ("bad_client_id", 5),
            ("route_not_found", 4),
            ("absolute_form", 1),
            ("header_too_large", 2),
        ],
        &[
            SMUGGLED_CLIENT,
            "evil.example",
            "passwd",
            "X-Padding",
            "Filler",
        ],
        &mut failures,
    )
    .await;
    failures.assert_none();
}

// ---------------------------------------------------------------------------------------------
// 3. Key-host tricks
// ---------------------------------------------------------------------------------------------

/// A P-256 public key (the curve's base point) as a JWK under the TPP's kid.
fn ec_jwk() -> String {
    let x = hex("6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296");
    let y = hex("4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5");
    format!(
        r#"{{"keys":[{{"kty":"EC","crv":"P-256","use":"sig","kid":"{KID}","x":"{}","y":"{}"}}]}}"#,
        b64(x),
        b64(y)
    )
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_host_tricks_fail_closed() {
    let mut h = Harness::start_with(|cfg| {
        cfg.set("key_sets", "fetch_timeout_ms", 500);
    })
    .await;
    let jwks = h.tpp.jwks();
    // A second host the redirect points at: it must never be contacted.
    let elsewhere = KeyHost::start(&h.pki.key_host.cert_pem, &h.pki.key_host.key_pem)
        .await
        .expect("second key host");
    elsewhere.set("/stolen/jwks.json", Serve::Json(jwks.clone()));

    let tpp_key_jwk = h.tpp.signer.key.public_jwk();
    let oct = format!(
        r#"{{"keys":[{{"kty":"oct","use":"sig","kid":"{KID}","k":"{}"}}]}}"#,
        b64(tpp_key_jwk.as_bytes())
    );
    let weak = RsaSigningKey::generate(KID, 1024).expect("1024-bit key");
    let thousands = {
        let filler: Vec<String> = (0..4999)
            .map(|i| format!(r#"{{"kty":"oct","kid":"filler-{i}","k":"AA"}}"#))
            .collect();
        format!(r#"{{"keys":[{tpp_key_jwk},{}]}}"#, filler.join(","))
    };
    let nested = format!(
        r#"{{"keys":[{}{}]}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );

    let unavailable = "temporarily_unavailable";
    let bad = "invalid_client_metadata";
    let served: Vec<(&str, Serve, u16, &'static str, &'static str)> = vec![
        (
            "/redirect.json",
            Serve::Redirect(elsewhere.url("/stolen/jwks.json")),
            502,
            unavailable,
            "redirect",
        ),
        (
            "/slow.json",
            Serve::Slow(Duration::from_secs(3), jwks.clone()),
            504,
            unavailable,
            "in time",
        ),
        (
            "/html.json",
            Serve::Typed(jwks.clone(), "text/html"),
            502,
            unavailable,
            "content type",
        ),
        (
            "/octet.json",
            Serve::Typed(jwks.clone(), "application/octet-stream"),
            502,
            unavailable,
            "content type",
        ),
        (
            "/ec.json",
            Serve::Json(ec_jwk()),
            400,
            bad,
            "not a key for PS256",
        ),
        ("/oct.json", Serve::Json(oct), 400, bad, "kid"),
        (
            "/weak.json",
            Serve::Json(RsaSigningKey::jwks(&[&weak])),
            400,
            bad,
            "kid",
        ),
        (
            "/thousands.json",
            Serve::Json(thousands),
            502,
            unavailable,
            "more than the 100",
        ),
        (
            "/not-json.json",
            Serve::Json("this is { not JSON".to_owned()),
            502,
            unavailable,
            "not a JWK set",
        ),
        (
            "/nested.json",
            Serve::Json(nested),
            502,
            unavailable,
            "not a JWK set",
        ),
        (
            "/huge.json",
            Serve::Huge(300_000),
            502,
            unavailable,
            "larger than",
        ),
    ];
    let mut cases = Vec::new();
    for (path, what, status, error, word) in served {
        h.key_host.set(path, what);
        let claims = h.claims_with(|m| {
            m.insert("jwks_uri".into(), json!(h.key_host.url(path)));
        });
        cases.push(
            Refusal::new(
                format!("key set at {path}"),
                h.tpp.sign(&claims),
                status,
                error,
            )
            .mentioning(word),
        );
    }
    let mut failures = Failures::default();
    let started = Instant::now();
    let refused = assert_refusals(&h, &cases, &mut failures).await;
    let elapsed = started.elapsed();
    failures.check("key host fetch counts", || {
        // The slow key host was cut off at the fetch deadline, not waited for.
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        assert_eq!(h.key_host.hits("/redirect.json"), 1);
        assert_eq!(
            elsewhere.total_hits(),
            0,
            "the redirect target was contacted"
        );
        // A failed fetch is remembered: each failing URL was fetched once.
        for path in [
            "/slow.json",
            "/html.json",
            "/thousands.json",
            "/not-json.json",
        ] {
            assert_eq!(h.key_host.hits(path), 1, "{path}");
        }
    });

    assert_unharmed(&mut h).await;
    let port = format!(":{}", h.key_host.addr().port());
    check_metrics(
        &h,
        refused,
        &[("key_set_unavailable", 7), ("key_set_timeout", 1)],
        &[
            "redirect.json",
            "stolen",
            "thousands",
            "localhost",
            "https://",
            &port,
        ],
        &mut failures,
    )
    .await;
    failures.assert_none();
}

// ---------------------------------------------------------------------------------------------
// 4. Upstream faults
// ---------------------------------------------------------------------------------------------

/// How the switchable upstream treats each request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Relay it to the stand-in registry and relay the answer back.
    Relay,
    /// Record it and hang up without answering (a registry crashing mid-request).
    Drop,
}

/// The gateway's upstream address, in front of the stand-in registry. Per request it relays or
/// hangs up (on connections the gateway already pooled, too), and it can stop listening
/// altogether (a closed port).
struct SwitchableUpstream {
    addr: SocketAddr,
    /// Where requests are relayed (set once the registry is known).
    registry: Arc<Mutex<Option<SocketAddr>>>,
    mode: Arc<Mutex<Mode>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Raw requests received in `Drop` mode.
    dropped: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl SwitchableUpstream {
    /// Listen on an ephemeral loopback port.
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let up = Self {
            addr: listener.local_addr().expect("addr"),
            registry: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Relay)),
            tasks: Arc::default(),
            dropped: Arc::default(),
        };
        up.serve(listener);
        up
    }

    fn relay_to(&self, registry: SocketAddr) {
        if let Ok(mut g) = self.registry.lock() {
            *g = Some(registry);
        }
    }

    fn set_mode(&self, mode: Mode) {
        if let Ok(mut g) = self.mode.lock() {
            *g = mode;
        }
    }

    fn serve(&self, listener: TcpListener) {
        let (registry, mode, tasks, dropped) = (
            self.registry.clone(),
            self.mode.clone(),
            self.tasks.clone(),
            self.dropped.clone(),
        );
        let accept = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let task = tokio::spawn(serve_connection(
                    conn,
                    registry.clone(),
                    mode.clone(),
                    dropped.clone(),
                ));
                if let Ok(mut g) = tasks.lock() {
                    g.push(task);
                }
            }
        });
        if let Ok(mut g) = self.tasks.lock() {
            g.push(accept);
        }
    }

    /// Stop listening and cut every open connection: the port is closed.
    fn close(&self) {
        if let Ok(mut g) = self.tasks.lock() {
            for t in g.drain(..) {
                t.abort();
            }
        }
    }

    /// Listen again on the same port.
    async fn reopen(&self) {
        self.close();
        let mut last = None;
        for _ in 0..50 {
            match TcpListener::bind(self.addr).await {
                Ok(l) => return self.serve(l),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("could not listen on {} again: {last:?}", self.addr);
    }

    fn dropped(&self) -> Vec<Vec<u8>> {
        self.dropped.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

impl Drop for SwitchableUpstream {
    fn drop(&mut self) {
        self.close();
    }
}

/// Serve one connection from the gateway, request by request, in the mode current at each.
async fn serve_connection(
    mut conn: TcpStream,
    registry: Arc<Mutex<Option<SocketAddr>>>,
    mode: Arc<Mutex<Mode>>,
    dropped: Arc<Mutex<Vec<Vec<u8>>>>,
) {
    let (mut from_gateway, mut from_registry) = (Vec::new(), Vec::new());
    let mut upstream: Option<TcpStream> = None;
    while let Some(request) = read_message(&mut conn, &mut from_gateway).await {
        if mode.lock().map(|g| *g).unwrap_or(Mode::Relay) == Mode::Drop {
            if let Ok(mut g) = dropped.lock() {
                g.push(request);
            }
            return;
        }
        if upstream.is_none() {
            let Some(addr) = registry.lock().ok().and_then(|g| *g) else {
                return;
            };
            upstream = TcpStream::connect(addr).await.ok();
        }
        let Some(up) = upstream.as_mut() else { return };
        if up.write_all(&request).await.is_err() {
            return;
        }
        let Some(response) = read_message(up, &mut from_registry).await else {
            return;
        };
        if conn.write_all(&response).await.is_err() {
            return;
        }
    }
}

/// Read one HTTP/1.1 message (head, then a Content-Length or chunked body) from `stream`,
/// buffering in `buf` what arrives past it; `None` at end of stream.
async fn read_message(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = message_end(buf) {
            return Some(buf.drain(..end).collect());
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Where the first complete message in `buf` ends, if it is complete.
fn message_end(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    if header("transfer-encoding:").is_some_and(|v| v.ends_with("chunked")) {
        let tail = buf[head_end..].windows(5).position(|w| w == b"0\r\n\r\n")?;
        return Some(head_end + tail + 5);
    }
    let length = header("content-length:").and_then(|v| v.parse::<usize>().ok());
    let end = head_end + length.unwrap_or(0);
    (buf.len() >= end).then_some(end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_are_json_and_never_retried_with_another_body() {
    // The switchable upstream listens first; the harness' registry is known once it started.
    let up = SwitchableUpstream::start().await;
    let upstream = up.addr;
    let mut h = Harness::start_with(move |cfg| {
        cfg.set("upstream", "url", format!("http://{upstream}"));
        cfg.set("upstream", "read_timeout_ms", 500);
    })
    .await;
    up.relay_to(h.registry.addr());

    // Healthy path through the relay.
    assert_unharmed(&mut h).await;

    // A slow registry: 504 JSON after the read timeout; forwarded once, not retried.
    h.registry
        .set_behaviour(Behaviour::Slow(Duration::from_secs(3)));
    let before = h.registry.count();
    let jwt = h.compliant_jwt();
    let started = Instant::now();
    let r = h.put_jwt(&jwt).await;
    let d = assert_rejection(&r, 504, "temporarily_unavailable");
    assert!(d.contains("in time"), "{d}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Let the registry's sleeping handler finish, then count what it saw.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let seen = h.registry.requests();
    assert_eq!(seen.len(), before + 1, "retried: {:?}", &seen[before..]);
    assert_eq!(seen[before].body.as_ref(), jwt.as_bytes());
    h.registry.set_behaviour(Behaviour::Normal);

    // The registry reads the request and hangs up — first on the connection the gateway
    // pooled from the request before: 502 JSON, and every copy the upstream got carries the
    // verified body byte for byte (a retry on a fresh connection replays the same bytes).
    assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
    let before = h.registry.count();
    up.set_mode(Mode::Drop);
    let jwt = h.compliant_jwt();
    let r = h.put_jwt(&jwt).await;
    let d = assert_rejection(&r, 502, "temporarily_unavailable");
    assert!(d.contains("registry"), "{d}");
    let dropped = up.dropped();
    assert!(
        (1..=2).contains(&dropped.len()),
        "the upstream got the request {} times",
        dropped.len()
    );
    for request in &dropped {
        let text = String::from_utf8_lossy(request);
        assert!(
            text.starts_with(&format!("PUT /register/{CLIENT_ID} HTTP/1.1\r\n")),
            "{text}"
        );
        assert!(request.ends_with(jwt.as_bytes()), "another body: {text}");
    }
    assert_eq!(h.registry.count(), before);

    // The registry down (nothing listens on its port): 502 JSON, nothing sent anywhere.
    up.close();
    up.set_mode(Mode::Relay);
    let r = h.put_jwt(&h.compliant_jwt()).await;
    let d = assert_rejection(&r, 502, "temporarily_unavailable");
    assert!(d.contains("registry"), "{d}");
    // Refusals do not depend on the registry.
    let r = h
        .put_jwt(&unsigned(&json!({"alg": "none"}), &h.claims(), b""))
        .await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    assert_eq!(h.registry.count(), before);
    assert_eq!(up.dropped().len(), dropped.len());

    // Back up: served again.
    up.reopen().await;
    assert_unharmed(&mut h).await;
    let mut failures = Failures::default();
    // The 504, the two 502s and the 400.
    check_metrics(
        &h,
        4,
        &[("upstream_timeout", 1), ("upstream_unavailable", 2)],
        &["127.0.0.1", &format!(":{}", upstream.port())],
        &mut failures,
    )
    .await;
    failures.assert_none();
    let text = h.metrics_text().await;
    let upstream_errors = Samples::parse(&text)
        .get(r#"dcrgate_requests_total{outcome="upstream_error",route="register_update"}"#);
    assert!(upstream_errors.is_some_and(|v| v >= 3.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_gets_a_json_403_for_anything_it_sends_and_is_counted() {
    let h = Harness::start().await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], h.gateway.listen));
    let anonymous =
        dcrgate_sandbox::client::TppClient::new(&h.pki.server_ca.cert_pem(), None, addr)
            .expect("client");
    let compliant = Put::jwt(h.compliant_jwt()).bytes();
    let requests: [&[u8]; 6] = [
        &compliant,
        b"GET /register/abc HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /no/such/route HTTP/1.1\r\nHost: x\r\n\r\n",
        b"DELETE /register/abc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n",
        b"PUT /register/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for raw in requests {
        let r = anonymous
            .send(raw)
            .await
            .expect("an answer, not a TLS alert");
        let d = common::assert_rejection(&r, 403, "access_denied");
        assert!(
            d.contains("no client certificate was presented"),
            "{}: {d}",
            String::from_utf8_lossy(&raw[..20])
        );
        assert!(r.header("x-request-id").is_some(), "{r:?}");
    }
    h.assert_not_forwarded();
    let key = r#"dcrgate_tls_handshakes_total{result="no_certificate"}"#;
    h.assert_metric_becomes(key, 6.0).await;
    // One WARN line for the six connections from this address.
    let log = h.gateway.stderr_log();
    let lines = log
        .lines()
        .filter(|l| l.contains("connected without a certificate"))
        .count();
    assert_eq!(lines, 1, "{log}");
    assert!(log.contains("127.0.0.1"), "{log}");
    // A certified client is still served.
    assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
}
