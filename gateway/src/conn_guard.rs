//! Connection deadlines: a client gets a bounded time from accept (or from the end of its
//! previous request) to a complete request head, TLS handshake included.
//!
//! pingora bounds each individual read, not the whole head, so a client dripping one byte every
//! few seconds would hold a connection for ever. The guard is armed before the TLS handshake
//! (pingora's pre-TLS hook), disarmed when a request head has arrived (`early_request_filter`)
//! and re-armed when the request is done (`logging`). When it fires, the socket is shut down
//! only if its descriptor is still the very socket the guard was armed for: the kernel's socket
//! cookie (`SO_COOKIE`, unique for the life of the system) must match, so a descriptor and
//! addresses reused by a later connection (loopback and NAT reuse ports) are never touched. A
//! guard also ends when a new connection from the same address is armed: the old connection
//! is gone (no two live connections share their addresses).

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
/// The guard's connection is gone: its watcher ends without cutting anything.
const ENDED: u64 = u64::MAX;

struct Guard {
    /// Milliseconds since `ConnGuards::epoch` at which to cut the connection; 0: disarmed.
    deadline: AtomicU64,
    wake: Notify,
    fd: RawFd,
    /// The socket's `SO_COOKIE`, when the kernel has one.
    cookie: Option<u64>,
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
            cookie: socket_cookie(fd),
            local,
            peer,
        });
        let previous = match self.guards.lock() {
            Ok(mut map) => map.insert(peer, guard.clone()),
            Err(_) => None,
        };
        // The previous connection from this address has ended: so does its guard.
        if let Some(old) = previous {
            old.deadline.store(ENDED, Ordering::Release);
            old.wake.notify_one();
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
            if deadline == ENDED {
                return;
            }
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

/// The kernel's cookie of the socket `fd` (Linux `SO_COOKIE`), if it has one.
#[allow(unsafe_code)]
fn socket_cookie(fd: RawFd) -> Option<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`, a live u64 of that size; an
    // invalid or closed descriptor makes it fail with EBADF and nothing is written.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            std::ptr::addr_of_mut!(cookie).cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize == std::mem::size_of::<u64>()).then_some(cookie)
}

/// Shut the socket down if `fd` still is the guarded connection. Returns whether it did.
#[allow(unsafe_code)]
fn cut(guard: &Guard) -> bool {
    // The very socket, not one that reuses its descriptor and addresses.
    if guard.cookie.is_some() && socket_cookie(guard.fd) != guard.cookie {
        return false;
    }
    // SAFETY: the descriptor is only borrowed for the duration of this call and never closed
    // here. It may have been closed (then every call below fails with EBADF) or reused by a
    // later connection (then its cookie or its addresses differ and nothing is done).
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
