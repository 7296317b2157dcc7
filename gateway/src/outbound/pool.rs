//! Idle connections by endpoint (host and port), bounded three ways: connections kept per
//! endpoint, endpoints kept at all, and how long a connection may sit idle. A connection whose
//! driver has ended is never handed out; one that outlived the idle bound is dropped (which
//! closes it) when next looked at.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;

/// The pool's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Idle connections kept per endpoint (0: no pooling).
    pub per_endpoint: usize,
    /// Endpoints with idle connections kept at most.
    pub endpoints: usize,
    /// Longest a connection is kept idle.
    pub idle: Duration,
}

impl PoolLimits {
    /// No connection is ever kept.
    pub const OFF: PoolLimits = PoolLimits {
        per_endpoint: 0,
        endpoints: 0,
        idle: Duration::ZERO,
    };
}

/// Host (lower case, no brackets), port, and whether the connection is plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
    plaintext: bool,
}

impl Endpoint {
    /// The endpoint `host:port`, over TLS unless `plaintext`.
    pub fn new(host: &str, port: u16, plaintext: bool) -> Self {
        Self {
            host: host.to_ascii_lowercase(),
            port,
            plaintext,
        }
    }
}

type Idle = (Instant, SendRequest<Full<Bytes>>);

/// The idle connections.
pub struct Pool {
    limits: PoolLimits,
    idle: Mutex<HashMap<Endpoint, Vec<Idle>>>,
}

impl Pool {
    /// An empty pool.
    pub fn new(limits: PoolLimits) -> Self {
        Self {
            limits,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// A live idle connection to `endpoint`, most recently used first.
    pub fn take(&self, endpoint: &Endpoint) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let conns = idle.get_mut(endpoint)?;
        let now = Instant::now();
        let mut found = None;
        while let Some((since, sender)) = conns.pop() {
            if now.duration_since(since) <= self.limits.idle && !sender.is_closed() {
                found = Some(sender);
                break;
            }
        }
        if conns.is_empty() {
            idle.remove(endpoint);
        }
        found
    }

    /// Keep `sender` for the next call to `endpoint`, if the bounds allow.
    pub fn put(&self, endpoint: Endpoint, sender: SendRequest<Full<Bytes>>) {
        if self.limits.per_endpoint == 0 || sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if !idle.contains_key(&endpoint) && idle.len() >= self.limits.endpoints {
            let limit = self.limits.idle;
            idle.retain(|_, conns| {
                conns.retain(|(since, s)| now.duration_since(*since) <= limit && !s.is_closed());
                !conns.is_empty()
            });
            if idle.len() >= self.limits.endpoints {
                return;
            }
        }
        let conns = idle.entry(endpoint).or_default();
        if conns.len() >= self.limits.per_endpoint {
            conns.remove(0);
        }
        conns.push((now, sender));
    }

    /// Idle connections held.
    pub fn idle(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(Vec::len)
            .sum()
    }
}
