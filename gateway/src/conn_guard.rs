//! Connection deadlines: a client gets a bounded time from accept (or from the end of its
//! previous request) to a complete request head, TLS handshake included.
//!
//! pingora bounds each individual read, not the whole head, so a client dripping one byte every
//! few seconds would hold a connection for ever. The guard is armed before the TLS handshake
//! (pingora's pre-TLS hook), disarmed when a request head has arrived (`early_request_filter`)
//! and re-armed when the request is done (`logging`). When it fires, the socket is shut down
//! after checking it is still the same connection (same local and peer address), so a file
//! descriptor reused by a later connection is never touched.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::listeners::PreTlsProcess;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::GetSocketDigest;
use tokio::sync::Notify;

use crate::metrics::Metrics;

const DISARMED: u64 = 0;

struct Guard {
    /// Milliseconds since `ConnGuards::epoch` at which to cut the connection; 0: disarmed.
    deadline: AtomicU64,
    wake: Notify,
    fd: RawFd,
    local: SocketAddr,
    peer: SocketAddr,
}

/// The deadlines of every open connection on the listener.
pub struct ConnGuards {
    guards: Mutex<HashMap<SocketAddr, Arc<Guard>>>,
    epoch: Instant,
    head_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl ConnGuards {
    /// Guards that allow `head_timeout` for each request head.
    pub fn new(head_timeout: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            guards: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            head_timeout,
            metrics,
        })
    }

    fn now_ms(&self) -> u64 {
        // +1 keeps a deadline computed at the epoch distinct from DISARMED.
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn deadline(&self) -> u64 {
        self.now_ms() + self.head_timeout.as_millis() as u64
    }

    fn lookup(&self, peer: &SocketAddr) -> Option<Arc<Guard>> {
        self.guards.lock().ok()?.get(peer).cloned()
    }

    /// A request head arrived from `peer`: stop its clock.
    pub fn disarm(&self, peer: &SocketAddr) {
        if let Some(g) = self.lookup(peer) {
            g.deadline.store(DISARMED, Ordering::Release);
            g.wake.notify_one();
        }
    }

    /// A request from `peer` finished: the next head must arrive within the timeout.
    pub fn rearm(&self, peer: &SocketAddr) {
        if let Some(g) = self.lookup(peer) {
            g.deadline.store(self.deadline(), Ordering::Release);
            g.wake.notify_one();
        }
    }

    fn arm(self: &Arc<Self>, fd: RawFd, local: SocketAddr, peer: SocketAddr) {
        let guard = Arc::new(Guard {
            deadline: AtomicU64::new(self.deadline()),
            wake: Notify::new(),
            fd,
            local,
            peer,
        });
        if let Ok(mut map) = self.guards.lock() {
            map.insert(peer, guard.clone());
        }
        let this = self.clone();
        tokio::spawn(async move {
            this.watch(&guard).await;
            if let Ok(mut map) = this.guards.lock() {
                if map.get(&peer).is_some_and(|g| Arc::ptr_eq(g, &guard)) {
                    map.remove(&peer);
                }
            }
        });
    }

    async fn watch(&self, guard: &Guard) {
        loop {
            let deadline = guard.deadline.load(Ordering::Acquire);
            if deadline == DISARMED {
                guard.wake.notified().await;
                continue;
            }
            let now = self.now_ms();
            if now >= deadline {
                if cut(guard) {
                    self.metrics
                        .client_timeouts
                        .with_label_values(&["head"])
                        .inc();
                    tracing::info!(peer = %guard.peer, "client too slow to send a request head: connection closed");
                }
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(deadline - now)) => {}
                _ = guard.wake.notified() => {}
            }
        }
    }

    /// How many connections are being watched.
    pub fn len(&self) -> usize {
        self.guards.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no connection is being watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Shut the socket down if `fd` still is the guarded connection. Returns whether it did.
#[allow(unsafe_code)]
fn cut(guard: &Guard) -> bool {
    // SAFETY: the descriptor is only borrowed for the duration of this call and never closed
    // here. It may have been closed (then every call below fails with EBADF) or reused by a
    // later connection (then its addresses differ and nothing is done).
    let fd = unsafe { BorrowedFd::borrow_raw(guard.fd) };
    let sock = socket2::SockRef::from(&fd);
    let same = |a: std::io::Result<socket2::SockAddr>, b: &SocketAddr| {
        a.ok().and_then(|a| a.as_socket()).is_some_and(|a| a == *b)
    };
    if same(sock.peer_addr(), &guard.peer) && same(sock.local_addr(), &guard.local) {
        return sock.shutdown(std::net::Shutdown::Both).is_ok();
    }
    false
}

/// pingora pre-TLS hook that arms a guard for each accepted connection.
pub struct ArmOnAccept(pub Arc<ConnGuards>);

#[async_trait]
impl PreTlsProcess for ArmOnAccept {
    async fn process(&self, stream: &mut L4Stream) -> pingora::Result<()> {
        let digest = stream.get_socket_digest();
        let addrs = digest.as_ref().and_then(|d| {
            let peer = *d.peer_addr()?.as_inet()?;
            let local = *d.local_addr()?.as_inet()?;
            Some((peer, local))
        });
        if let Some((peer, local)) = addrs {
            self.0.arm(stream.as_raw_fd(), local, peer);
        }
        Ok(())
    }
}
