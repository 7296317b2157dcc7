//! The served certificate and the client CA bundle, swappable at run time without a restart.
//!
//! [`ReloadableCert`] is a rustls `ResolvesServerCert` and [`ReloadableClientVerifier`] a rustls
//! `ClientCertVerifier`; both plug into pingora's `TlsSettings::set_cert_resolver` and
//! `TlsSettings::set_client_cert_verifier`. A reload validates the new files completely before
//! swapping anything in, and keeps the old material on any error. Client authentication is
//! required whatever the loaded bundle: the verifier hard-codes it rather than asking the
//! current inner verifier.
//!
//! A reload affects new full handshakes. rustls does not re-run the client verifier on a resumed
//! session, so a client admitted under the old bundle can resume its session until the session
//! (or ticket) expires.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::config::Revocation;
use crate::metrics::Metrics;
use crate::outbound::HttpsClient;
use crate::tls::crl::{self, CrlError};
use crate::tls::ocsp::OcspCache;
use crate::tls::pem::{load_cert_and_key, load_certs, load_client_ca_bundle, PemError};
use crate::tls::revocation::{Decision, RevocationBuildError, RevocationVerifier};

/// How many distinct sets of CA hints a verifier keeps for its whole life (see
/// [`ReloadableClientVerifier::root_hint_subjects`]).
const MAX_HINT_SETS: usize = 64;

/// How many recently verified leaves are remembered (see `ReloadableClientVerifier::verified`).
const VERIFIED_LEAVES: u64 = 10_000;

/// Marks "no hint set published": send an empty list of CA hints.
const NO_HINTS: usize = usize::MAX;

/// A reload (or the first load) was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsReloadError {
    /// A PEM file is unusable: missing, empty, no certificate or key, a bad trust anchor, or a
    /// key that does not belong to the certificate.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// The key could not be turned into a signing key, or does not match the leaf certificate.
    #[error("{cert}: certificate and key {key} are not usable: {reason}")]
    Key {
        /// The certificate chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
    /// The leaf certificate does not parse as X.509.
    #[error("{path}: leaf certificate does not parse: {reason}")]
    Certificate {
        /// The certificate chain file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A CRL file is unusable.
    #[error(transparent)]
    Crl(#[from] CrlError),
    /// rustls refused to build a client certificate verifier over the bundle.
    #[error("{path}: client certificate verifier: {source}")]
    Verifier {
        /// The CA bundle file.
        path: PathBuf,
        /// Why.
        source: rustls::server::VerifierBuilderError,
    },
}

// The locks below only ever guard an `Arc` that is replaced by a single assignment, so a
// poisoned lock still holds a complete, valid value: recover it instead of failing handshakes.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The served certificate, swappable at run time (rustls `ResolvesServerCert`).
pub struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
    /// notAfter of the current leaf, seconds since the epoch; written under `current`'s write
    /// lock so the two always describe the same certificate.
    not_after: AtomicI64,
}

impl ReloadableCert {
    /// Load a certificate chain (leaf first) and its private key.
    pub fn load(chain: &Path, key: &Path) -> Result<Arc<Self>, TlsReloadError> {
        let (certified, not_after) = Self::build(chain, key)?;
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(certified)),
            not_after: AtomicI64::new(not_after),
        }))
    }

    /// Replace the served certificate. Everything is checked first; on any error the current
    /// certificate stays in place.
    pub fn reload(&self, chain: &Path, key: &Path) -> Result<(), TlsReloadError> {
        let (certified, not_after) = Self::build(chain, key)?;
        let mut current = write(&self.current);
        *current = Arc::new(certified);
        self.not_after.store(not_after, Ordering::Release);
        Ok(())
    }

    /// The notBefore and notAfter of the currently served leaf certificate, seconds since the
    /// epoch.
    pub fn validity(&self) -> (i64, i64) {
        let current = read(&self.current);
        current
            .end_entity_cert()
            .ok()
            .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
            .map(|(_, c)| {
                (
                    c.validity().not_before.timestamp(),
                    c.validity().not_after.timestamp(),
                )
            })
            .unwrap_or((i64::MIN, self.not_after.load(Ordering::Acquire)))
    }

    /// The notAfter of the currently served leaf certificate, seconds since the epoch.
    pub fn not_after(&self) -> i64 {
        let _current = read(&self.current);
        self.not_after.load(Ordering::Acquire)
    }

    fn build(chain: &Path, key: &Path) -> Result<(CertifiedKey, i64), TlsReloadError> {
        // Checks that both files parse and that the key belongs to the leaf.
        let (certs, private_key) = load_cert_and_key(chain, key)?;
        let key_error = |reason: String| TlsReloadError::Key {
            cert: chain.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let signing_key = ring_provider()
            .key_provider
            .load_private_key(private_key)
            .map_err(|e| key_error(e.to_string()))?;
        let certified = CertifiedKey::new(certs, signing_key);
        // Strict: a key whose public half cannot be compared is refused too.
        certified
            .keys_match()
            .map_err(|e| key_error(e.to_string()))?;
        let cert_error = |reason: String| TlsReloadError::Certificate {
            path: chain.to_owned(),
            reason,
        };
        let leaf = certified
            .end_entity_cert()
            .map_err(|e| cert_error(e.to_string()))?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(leaf).map_err(|e| cert_error(e.to_string()))?;
        let not_after = parsed.validity().not_after.timestamp();
        Ok((certified, not_after))
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&read(&self.current)))
    }
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = read(&self.current);
        f.debug_struct("ReloadableCert")
            .field("chain_len", &current.cert.len())
            .field("not_after", &self.not_after.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

/// The client certificate verifier, swappable at run time; always mandatory.
pub struct ReloadableClientVerifier {
    current: RwLock<Arc<RevocationVerifier>>,
    /// OCSP answers, kept across reloads.
    ocsp: Arc<OcspCache>,
    /// Counts the loads: a connection whose identity was verified under an older one has its
    /// chain checked again on its next request (a CA removed or a certificate revoked since).
    generation: AtomicU64,
    /// Leaves (by SHA-256) verified in a full handshake, with the generation they were verified
    /// under: a completed handshake whose leaf is here at the current generation was verified
    /// now, not resumed, and need not be verified again.
    verified: moka::sync::Cache<[u8; 32], u64>,
    /// Leaves (by SHA-256) whose refusal was logged in the last [`REFUSAL_LOG_INTERVAL`].
    refusals_logged: moka::sync::Cache<[u8; 32], ()>,
    metrics: Option<Arc<Metrics>>,
    hints: HintArena,
    /// Serialises reloads, so the hint arena is filled by one writer at a time.
    reload_lock: Mutex<()>,
}

impl ReloadableClientVerifier {
    /// Load the client CA bundle (PEM, at least one certificate, every one a usable anchor),
    /// without revocation checks.
    pub fn load(client_ca: &Path) -> Result<Arc<Self>, TlsReloadError> {
        Self::load_with(client_ca, &Revocation::default(), None, None)
    }

    /// Load the client CA bundle and the CRLs of `revocation`; revocation checks and CRL
    /// freshness are counted in `metrics` when given. OCSP responders are asked with
    /// `outbound` (none: OCSP is never available).
    pub fn load_with(
        client_ca: &Path,
        revocation: &Revocation,
        metrics: Option<Arc<Metrics>>,
        outbound: Option<HttpsClient>,
    ) -> Result<Arc<Self>, TlsReloadError> {
        let ocsp = Arc::new(OcspCache::new(outbound, metrics.clone()));
        let inner = Self::build(client_ca, revocation, metrics.as_ref(), &ocsp)?;
        if let Some(m) = &metrics {
            for &r in REFUSALS {
                m.handshakes.with_label_values(&[r]).inc_by(0);
            }
        }
        let hints = HintArena::new();
        hints.publish(inner.root_hint_subjects());
        Ok(Arc::new(Self {
            current: RwLock::new(inner),
            ocsp,
            generation: AtomicU64::new(0),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_LEAVES)
                .time_to_live(std::time::Duration::from_secs(60))
                .build(),
            refusals_logged: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_LEAVES)
                .time_to_live(REFUSAL_LOG_INTERVAL)
                .build(),
            metrics,
            hints,
            reload_lock: Mutex::new(()),
        }))
    }

    /// Replace the client CA bundle, without revocation checks.
    pub fn reload(&self, client_ca: &Path) -> Result<(), TlsReloadError> {
        self.reload_with(client_ca, &Revocation::default())
    }

    /// Replace the client CA bundle and the CRLs. An empty or invalid bundle or CRL is an
    /// error and the current verifier (with its CRLs) stays in place.
    pub fn reload_with(
        &self,
        client_ca: &Path,
        revocation: &Revocation,
    ) -> Result<(), TlsReloadError> {
        let inner = Self::build(client_ca, revocation, self.metrics.as_ref(), &self.ocsp)?;
        let _reloading = self
            .reload_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *write(&self.current) = Arc::clone(&inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        if !self.hints.publish(inner.root_hint_subjects()) {
            tracing::warn!(
                bundle = %client_ca.display(),
                "client CA bundle reloaded; too many distinct bundles since start, CA hints are no \
                 longer sent to clients until a previously seen bundle is loaded again"
            );
        }
        Ok(())
    }

    /// Whether a peer chain from a completed handshake is trusted by the current bundle.
    ///
    /// rustls does not run the verifier again when a session is resumed, so after a reload a
    /// client holding a session from before it could keep using a certificate from a CA that was
    /// removed, or one revoked since. A chain verified in this very handshake (its leaf recorded
    /// at the current generation) is not verified twice; until the first reload every handshake
    /// was verified against the one bundle, so this costs nothing then.
    pub fn still_trusted(&self, chain: &[CertificateDer<'static>]) -> bool {
        let generation = self.generation();
        if generation == 0 {
            return true;
        }
        match chain.first() {
            Some(leaf) if self.verified.get(&leaf_key(leaf)) == Some(generation) => true,
            _ => self.verify_now(chain),
        }
    }

    /// The number of reloads so far; see [`ReloadableClientVerifier::trusts_now`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a chain verified at generation `verified_at` is still trusted: at once when
    /// nothing was reloaded since, else by verifying it again with the current bundle and CRLs.
    /// On `Some(generation)` the chain is trusted under that (current) generation.
    pub fn trusts_now(&self, chain: &[CertificateDer<'static>], verified_at: u64) -> Option<u64> {
        let generation = self.generation();
        (generation == verified_at || self.verify_now(chain)).then_some(generation)
    }

    /// Verify a chain (leaf first) a trusted front proxy passed on, exactly as a full handshake
    /// verifies a presented one (current bundle and CRLs, the rule on intermediates), without
    /// counting it as a handshake. On `Ok` the generation it was verified under.
    pub fn verify_passed_on(
        &self,
        chain: &[CertificateDer<'static>],
    ) -> Result<u64, rustls::Error> {
        let generation = self.generation();
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or(rustls::Error::NoCertificatesPresented)?;
        self.inner()
            .verify_client_cert(leaf, intermediates, UnixTime::now())?;
        crate::tls::ca_usage::check_intermediates(intermediates)?;
        Ok(generation)
    }

    /// Verify `chain` (leaf first) with the current bundle and CRLs, and the rule on
    /// intermediates: what a full handshake checks.
    fn verify_now(&self, chain: &[CertificateDer<'static>]) -> bool {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return false;
        };
        self.inner()
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .is_ok()
            && crate::tls::ca_usage::check_intermediates(intermediates).is_ok()
    }

    fn build(
        client_ca: &Path,
        revocation: &Revocation,
        metrics: Option<&Arc<Metrics>>,
        ocsp: &Arc<OcspCache>,
    ) -> Result<Arc<RevocationVerifier>, TlsReloadError> {
        let roots = load_client_ca_bundle(client_ca)?;
        let crls = crl::load_all(&revocation.crls)?;
        if let Some(m) = metrics {
            m.crl_this_update.reset();
            m.crl_next_update.reset();
            for c in &crls {
                m.crl_this_update
                    .with_label_values(&[c.issuer.as_str()])
                    .set(c.this_update);
                if let Some(next) = c.next_update {
                    m.crl_next_update
                        .with_label_values(&[c.issuer.as_str()])
                        .set(next);
                }
            }
        }
        let cas: Vec<Vec<u8>> = load_certs(client_ca)?
            .iter()
            .map(|c| c.as_ref().to_vec())
            .collect();
        // The builder's default already makes a certificate mandatory; this type enforces it
        // again on its own, whatever the inner verifier says.
        let verifier = RevocationVerifier::build(
            Arc::new(roots),
            &cas,
            revocation,
            &crls,
            Arc::clone(ocsp),
            metrics.cloned(),
        )
        .map_err(|e| match e {
            RevocationBuildError::Verifier(source) => TlsReloadError::Verifier {
                path: client_ca.to_owned(),
                source,
            },
            RevocationBuildError::Crl(e) => TlsReloadError::Crl(e),
        })?;
        Ok(Arc::new(verifier))
    }

    fn inner(&self) -> Arc<RevocationVerifier> {
        Arc::clone(&read(&self.current))
    }

    /// The CRLs in force past their nextUpdate, when a policy is `require` (readiness).
    pub fn stale_crls(&self, now: i64) -> Vec<String> {
        self.inner()
            .stale_crls(now)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The OCSP step of a request on a connection whose leaf's answer was not cached at the
    /// handshake, or has expired since ([`RevocationVerifier::confirm`]).
    pub async fn confirm(&self, chain: &[CertificateDer<'static>]) -> Decision {
        self.inner().confirm(chain).await
    }
}

impl ClientCertVerifier for ReloadableClientVerifier {
    // Never delegated: no bundle, reload or inner verifier changes these. A certificate is
    // always asked for, and one that is presented is always verified; a client that presents
    // none completes the handshake only so that it can be counted (`no_certificate`) and told
    // why in JSON: its connection never has an identity, and every request on it is refused
    // (403 `no_client_identity`) before any other check (`proxy::admit`).
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// The subjects of the current bundle's CAs, sent in the CertificateRequest so that a
    /// client holding several certificates picks one this gateway accepts.
    ///
    /// The trait wants a slice borrowed from `&self`, while a reload replaces the bundle under
    /// concurrent handshakes. Every distinct hint set is therefore kept for the life of the
    /// verifier in a fixed arena of write-once slots (`OnceLock`): a published slice is never
    /// freed or moved, so handing it out is sound without `unsafe` and without a lock. Reloading
    /// a bundle whose subjects were seen before reuses that slot, so the usual operation
    /// (rotating between a few bundles, or reloading the same one) never grows the arena. Once
    /// `MAX_HINT_SETS` distinct sets have been seen, a new set is not stored and an empty list is
    /// sent instead: RFC 8446 and RFC 5246 let the client then send any certificate it has, and
    /// verification itself always uses the current bundle. Stale hints are never sent.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.hints.current()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let generation = self.generation();
        let result = self
            .inner()
            .verify_client_cert(end_entity, intermediates, now)
            .and_then(|verified| {
                crate::tls::ca_usage::check_intermediates(intermediates)?;
                Ok(verified)
            });
        match &result {
            // Only a reload makes the cache worth asking (see `still_trusted`).
            Ok(_) if generation > 0 => {
                self.verified.insert(leaf_key(end_entity), generation);
            }
            Ok(_) => {}
            Err(e) => {
                if let Some(m) = &self.metrics {
                    m.handshakes.with_label_values(&[refusal(e)]).inc();
                }
                let key = leaf_key(end_entity);
                if !self.refusals_logged.contains_key(&key) {
                    self.refusals_logged.insert(key, ());
                    log_refusal(end_entity, e);
                }
            }
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

impl fmt::Debug for ReloadableClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableClientVerifier")
            .field("inner", &*read(&self.current))
            .field("hint_subjects", &self.hints.current().len())
            .finish_non_exhaustive()
    }
}

/// Why a client certificate chain was refused, as the closed `result` label of
/// `dcrgate_tls_handshakes_total`.
pub fn refusal(e: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "unknown_ca",
            C::Expired | C::ExpiredContext { .. } => "expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "not_yet_valid",
            C::Revoked => "revoked",
            C::UnknownRevocationStatus => "revocation_unknown",
            C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => {
                "revocation_unavailable"
            }
            C::BadSignature | C::BadEncoding => "bad_certificate",
            C::InvalidPurpose | C::InvalidPurposeContext { .. } | C::Other(_) => "bad_usage",
            _ => "bad_certificate",
        },
        _ => "protocol",
    }
}

/// Every `result` value [`refusal`] can give (the metric catalogue's list).
pub use crate::metrics::catalogue::HANDSHAKE_REFUSALS as REFUSALS;

/// The key of a leaf in the verified cache: the SHA-256 of its DER.
/// A refused certificate is logged once in this long.
pub const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// One WARN line for a refused client certificate: why, and its subject, issuer and serial
/// (subject and issuer clipped, every control character escaped by the log writer).
fn log_refusal(leaf: &CertificateDer<'_>, e: &rustls::Error) {
    const MAX: usize = 256;
    match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok((_, cert)) => {
            let serial: String = cert
                .raw_serial()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            tracing::warn!(
                result = refusal(e),
                subject = crate::logsafe::clip(&cert.subject().to_string(), MAX),
                issuer = crate::logsafe::clip(&cert.issuer().to_string(), MAX),
                serial = crate::logsafe::clip(&serial, 64),
                "client certificate refused at the handshake (logged once a minute per certificate)"
            );
        }
        Err(_) => tracing::warn!(
            result = refusal(e),
            "client certificate refused at the handshake: it does not parse"
        ),
    }
}

fn leaf_key(leaf: &CertificateDer<'_>) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// Write-once slots of CA hint sets; the current one is chosen by index.
struct HintArena {
    slots: Box<[OnceLock<Box<[DistinguishedName]>>]>,
    current: AtomicUsize,
}

impl HintArena {
    fn new() -> Self {
        Self {
            slots: (0..MAX_HINT_SETS).map(|_| OnceLock::new()).collect(),
            current: AtomicUsize::new(NO_HINTS),
        }
    }

    fn current(&self) -> &[DistinguishedName] {
        let index = self.current.load(Ordering::Acquire);
        self.slots
            .get(index)
            .and_then(OnceLock::get)
            .map_or(&[], |hints| hints)
    }

    /// Make `hints` the current set. Returns `false` when the arena is full and the set is new,
    /// in which case no hints are sent. Callers serialise calls (slots fill in order).
    fn publish(&self, hints: &[DistinguishedName]) -> bool {
        let same = |stored: &[DistinguishedName]| {
            stored.len() == hints.len()
                && stored
                    .iter()
                    .zip(hints)
                    .all(|(a, b)| a.as_ref() == b.as_ref())
        };
        let mut chosen = NO_HINTS;
        for (index, slot) in self.slots.iter().enumerate() {
            match slot.get() {
                Some(stored) if same(stored) => {
                    chosen = index;
                    break;
                }
                Some(_) => {}
                None => {
                    slot.get_or_init(|| hints.to_vec().into_boxed_slice());
                    chosen = index;
                    break;
                }
            }
        }
        self.current.store(chosen, Ordering::Release);
        chosen != NO_HINTS
    }
}

#[cfg(test)]
mod tests;
