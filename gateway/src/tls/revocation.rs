//! Revocation of client certificates (`[revocation]`): CRLs and OCSP, under the policy of each
//! certificate's issuing CA.
//!
//! The chain is verified by rustls-webpki against the client CA bundle; then each certificate
//! the scope covers is judged under the policy of its issuer (a `[[revocation.issuer]]` whose
//! subject is its issuer name, else `revocation.mode` and `revocation.order`). Its status comes
//! from the issuer's CRL ([`CrlIndex`]) or, with order `ocsp_then_crl` and for a leaf that names
//! a responder, from OCSP first ([`OcspCache`]), the CRL deciding when OCSP gives no answer.
//! `require` refuses a revoked certificate, an unknown status and an unavailable one (stale
//! CRL, unreachable responder); `prefer` refuses only a revoked one, counting and logging the
//! rest (fail open); `off` checks nothing.
//!
//! The handshake reads OCSP answers from the cache only. A leaf whose answer is not cached yet
//! passes the handshake (unless its CRL revokes it), its exchange started at once; its first
//! request waits for the answer ([`RevocationVerifier::confirm`]) and is refused with 403
//! `access_denied` when the policy refuses it. Every later request reads the cache again, so a
//! certificate revoked on an open connection is refused once its cached answer expires.
//! Each decision is counted by result in `dcrgate_revocation_checks_total` (`good`, `revoked`,
//! `unknown`, `unavailable`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use dcrgate_ocsp::verify::IssuerKey;
use dcrgate_ocsp::CertId;
use dcrgate_policies::dn::{match_dn, Dn, MatchMode};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::{
    IssuerPolicy, OcspSettings, Revocation, RevocationMode, RevocationOrder, RevocationScope,
};
use crate::metrics::Metrics;
use crate::tls::crl::{CrlError, LoadedCrl};
use crate::tls::crl_index::CrlIndex;
pub use crate::tls::crl_index::RevocationResult;
use crate::tls::ocsp::{responder_uri, responder_url, OcspCache, OcspStatus, Question};

// The `result` values of `dcrgate_ocsp_exchanges_total` (the metric catalogue's list),
// exported at 0 for every policy that asks OCSP.
use crate::metrics::catalogue::OCSP_EXCHANGES as OCSP_RESULTS;

/// Issuer names remembered with the policy they resolved to.
const MEMO_CAPACITY: usize = 1024;

/// The client certificate verifier with the configured revocation policies.
pub struct RevocationVerifier {
    /// Chain verification against the client CA bundle.
    chain: Arc<dyn ClientCertVerifier>,
    /// The CRLs (none when revocation is off).
    index: CrlIndex,
    /// The `[[revocation.issuer]]` policies, then the default one.
    policies: Vec<IssuerPolicy>,
    /// Whether any policy checks anything.
    on: bool,
    /// Whether any policy that checks asks OCSP.
    asks_ocsp: bool,
    /// Each CRL's issuer name (label) and nextUpdate, for readiness.
    crl_next_updates: Vec<(String, Option<i64>)>,
    scope: RevocationScope,
    ocsp: Arc<OcspCache>,
    ocsp_settings: OcspSettings,
    /// The client CA bundle's CAs by subject (DER): issuers for OCSP questions.
    cas: HashMap<Vec<u8>, Issuer>,
    /// Issuer name (DER) to the index of its policy.
    memo: Mutex<HashMap<Vec<u8>, usize>>,
    metrics: Option<Arc<Metrics>>,
}

/// An issuing CA as OCSP needs it, hashed once.
struct Issuer {
    key: IssuerKey,
    /// SHA-1 of its subject name (the CertID's issuerNameHash; the key hash is `key.key_sha1`).
    name_sha1: Vec<u8>,
}

impl Issuer {
    fn from_parsed(cert: &X509Certificate<'_>) -> Self {
        let key = IssuerKey::from_parsed(cert);
        let name_sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &key.subject)
            .as_ref()
            .to_vec();
        Self { key, name_sha1 }
    }

    fn cert_id(&self, serial: &[u8]) -> CertId {
        CertId {
            hash: dcrgate_ocsp::cert_id::HashAlgorithm::Sha1,
            issuer_name_hash: self.name_sha1.clone(),
            issuer_key_hash: self.key.key_sha1.clone(),
            serial: dcrgate_ocsp::cert_id::serial_magnitude(serial).to_vec(),
        }
    }
}

/// The leaf's OCSP question, before anything is cloned: its CertID (the cache key) and what
/// the question needs if the answer is not cached.
struct Pending<'a> {
    id: CertId,
    uri: &'a str,
    issuer: Option<Issuer>,
    bundle_issuer: Option<&'a Issuer>,
    policy: usize,
}

/// One certificate's status under its issuer's policy.
#[derive(Debug, Clone, Copy)]
struct Judged {
    policy: usize,
    result: RevocationResult,
}

/// What the handshake found out about a chain.
struct Finding {
    judged: Vec<Judged>,
    /// The leaf's OCSP question, when its answer is not cached yet, with its CRL status.
    pending: Option<(Question, RevocationResult)>,
}

/// What a policy makes of a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Accepted (good, or not known under `prefer`).
    Accept,
    /// Refused.
    Refuse(RevocationResult),
}

/// OCSP first, the CRL when OCSP gives no answer; a revocation from either stands.
fn combine(ocsp: OcspStatus, crl: RevocationResult) -> RevocationResult {
    match (ocsp, crl) {
        (OcspStatus::Good, _) => RevocationResult::Good,
        (OcspStatus::Revoked, _) | (_, RevocationResult::Revoked) => RevocationResult::Revoked,
        (_, RevocationResult::Good) => RevocationResult::Good,
        (_, RevocationResult::Unavailable) | (OcspStatus::Unavailable, _) => {
            RevocationResult::Unavailable
        }
        (OcspStatus::Unknown, RevocationResult::Unknown) => RevocationResult::Unknown,
    }
}

fn parse_all<'a>(ders: &[&'a [u8]]) -> Vec<Option<X509Certificate<'a>>> {
    ders.iter()
        .map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
        .collect()
}

impl RevocationVerifier {
    /// A verifier over `roots` (the client CA bundle; `cas` its certificates, DER) with
    /// `revocation`'s policies and scope, these CRLs, and OCSP answers in `ocsp`.
    pub fn build(
        roots: Arc<RootCertStore>,
        cas: &[Vec<u8>],
        revocation: &Revocation,
        crls: &[LoadedCrl],
        ocsp: Arc<OcspCache>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, RevocationBuildError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = WebPkiClientVerifier::builder_with_provider(roots, provider).build()?;
        if let Some(m) = &metrics {
            // Every result is exported from the start, at 0, so alerts see the series.
            for r in RevocationResult::ALL {
                m.revocation_checks
                    .with_label_values(&[r.as_str()])
                    .inc_by(0);
            }
        }
        let mut policies = revocation.issuers.clone();
        policies.push(IssuerPolicy {
            name: "default".into(),
            subject: None,
            mode: revocation.mode,
            order: revocation.order,
        });
        let on = policies.iter().any(|p| p.mode != RevocationMode::Off);
        let asks_ocsp = policies
            .iter()
            .any(|p| p.mode != RevocationMode::Off && p.order == RevocationOrder::OcspThenCrl);
        if let Some(m) = &metrics {
            for p in policies.iter().filter(|p| {
                p.mode != RevocationMode::Off && p.order == RevocationOrder::OcspThenCrl
            }) {
                for &result in OCSP_RESULTS {
                    m.ocsp_exchanges
                        .with_label_values(&[p.name.as_str(), result])
                        .inc_by(0);
                }
            }
        }
        let crls = if on { crls } else { &[] };
        let mut by_subject = HashMap::new();
        for der in cas {
            if let Ok((_, ca)) = X509Certificate::from_der(der) {
                by_subject.insert(ca.subject().as_raw().to_vec(), Issuer::from_parsed(&ca));
            }
        }
        Ok(Self {
            chain,
            index: CrlIndex::build(crls, cas)?,
            policies,
            on,
            asks_ocsp,
            crl_next_updates: crls
                .iter()
                .map(|c| (c.issuer.clone(), c.next_update))
                .collect(),
            scope: revocation.scope,
            ocsp,
            ocsp_settings: revocation.ocsp.clone(),
            cas: by_subject,
            memo: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// The index of the policy for certificates issued by `issuer` (name DER).
    fn policy_index(&self, issuer: &[u8]) -> usize {
        let default = self.policies.len() - 1;
        if default == 0 {
            return 0;
        }
        let mut memo = self
            .memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = memo.get(issuer) {
            return *i;
        }
        let i = Dn::from_der_name(issuer)
            .ok()
            .and_then(|dn| {
                self.policies.iter().position(|p| {
                    p.subject
                        .as_ref()
                        .is_some_and(|s| match_dn(s, &dn, &MatchMode::StrictOrder, &[]).is_ok())
                })
            })
            .unwrap_or(default);
        if memo.len() < MEMO_CAPACITY {
            memo.insert(issuer.to_vec(), i);
        }
        i
    }

    /// The CRLs in force that are past their nextUpdate at `now`, by issuer name, when a
    /// policy is `require` (under `prefer` a stale CRL refuses nothing).
    pub fn stale_crls(&self, now: i64) -> Vec<&str> {
        if !self
            .policies
            .iter()
            .any(|p| p.mode == RevocationMode::Require)
        {
            return Vec::new();
        }
        self.crl_next_updates
            .iter()
            .filter(|(_, next)| next.is_some_and(|n| n < now))
            .map(|(issuer, _)| issuer.as_str())
            .collect()
    }

    /// The policy certificates issued by `issuer` (name DER) are judged under.
    pub fn policy_for(&self, issuer: &[u8]) -> &IssuerPolicy {
        &self.policies[self.policy_index(issuer)]
    }

    /// The OCSP question about `leaf`, when its policy asks OCSP, it names a responder and
    /// its issuer is known (presented after it, or in the bundle).
    fn pending<'a>(
        &'a self,
        leaf: &'a X509Certificate<'_>,
        rest: &[Option<X509Certificate<'_>>],
        policy: usize,
    ) -> Option<Pending<'a>> {
        if self.policies[policy].order != RevocationOrder::OcspThenCrl {
            return None;
        }
        let uri = responder_uri(leaf)?;
        let issuer_name = leaf.issuer().as_raw();
        let presented = rest
            .iter()
            .flatten()
            .find(|c| c.subject().as_raw() == issuer_name);
        let (issuer, bundle_issuer) = match presented {
            Some(cert) => (Some(Issuer::from_parsed(cert)), None),
            None => (None, Some(self.cas.get(issuer_name)?)),
        };
        let id = issuer
            .as_ref()
            .or(bundle_issuer)
            .map(|i| i.cert_id(leaf.raw_serial()))?;
        Some(Pending {
            id,
            uri,
            issuer,
            bundle_issuer,
            policy,
        })
    }

    /// The question to ask when `p`'s answer is not cached.
    fn question(&self, p: Pending<'_>) -> Option<Question> {
        let issuer = p.issuer.as_ref().or(p.bundle_issuer)?;
        Some(Question {
            id: p.id,
            issuer: issuer.key.clone(),
            url: responder_url(p.uri)?,
            policy: self.policies[p.policy].name.clone(),
        })
    }

    /// Each certificate of `chain` (leaf first) the scope covers, judged from the CRLs and the
    /// cached OCSP answers.
    fn find(&self, chain: &[&[u8]], now: i64) -> Finding {
        let parsed = parse_all(chain);
        let checked = match self.scope {
            RevocationScope::Chain => parsed.len(),
            RevocationScope::Leaf => 1,
        };
        let mut finding = Finding {
            judged: Vec::with_capacity(checked),
            pending: None,
        };
        for (i, cert) in parsed.iter().take(checked).enumerate() {
            let Some(cert) = cert else {
                // Unparseable: judged under the default policy.
                finding.judged.push(Judged {
                    policy: self.policies.len() - 1,
                    result: RevocationResult::Unknown,
                });
                continue;
            };
            let policy = self.policy_index(cert.issuer().as_raw());
            if self.policies[policy].mode == RevocationMode::Off {
                continue;
            }
            let crl = self.index.one(cert, &parsed[i + 1..], now);
            let pending = if i == 0 {
                self.pending(cert, &parsed[1..], policy)
            } else {
                None
            };
            let result = match pending {
                None => crl,
                Some(p) => match self.ocsp.peek(&p.id) {
                    Some(status) => combine(status, crl),
                    None if crl == RevocationResult::Revoked => crl,
                    None => match self.question(p) {
                        Some(q) => {
                            finding.pending = Some((q, crl));
                            continue;
                        }
                        // A responder URI that is not an http(s) URL: no OCSP.
                        None => crl,
                    },
                },
            };
            finding.judged.push(Judged { policy, result });
        }
        finding
    }

    /// What the policy of index `policy` makes of `result`.
    fn decide(&self, policy: usize, result: RevocationResult) -> Decision {
        let p = &self.policies[policy];
        match (result, p.mode) {
            (_, RevocationMode::Off) | (RevocationResult::Good, _) => Decision::Accept,
            (RevocationResult::Unknown | RevocationResult::Unavailable, RevocationMode::Prefer) => {
                tracing::warn!(
                    revocation = result.as_str(),
                    issuer = %p.name,
                    "client certificate revocation status not known; accepted (mode = prefer)"
                );
                Decision::Accept
            }
            _ => Decision::Refuse(result),
        }
    }

    /// The decisions on `judged`, counted; the first refusal.
    fn verdict(&self, judged: &[Judged]) -> Decision {
        let mut verdict = Decision::Accept;
        for j in judged {
            self.count(j.result);
            if let (Decision::Accept, Decision::Refuse(r)) =
                (verdict, self.decide(j.policy, j.result))
            {
                verdict = Decision::Refuse(r);
            }
        }
        verdict
    }

    /// The revocation status of a chain under the strict policy (whatever the mode lets
    /// through), OCSP answers from the cache only; `Err` when the chain fails for another
    /// reason (untrusted issuer, expiry, ...).
    pub fn status(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<RevocationResult, rustls::Error> {
        self.chain
            .verify_client_cert(end_entity, intermediates, now)?;
        let chain = ders(end_entity, intermediates);
        let finding = self.find(&chain, secs(now));
        let mut results: Vec<RevocationResult> = finding.judged.iter().map(|j| j.result).collect();
        if let Some((_, crl)) = finding.pending {
            results.push(combine(OcspStatus::Unavailable, crl));
        }
        Ok(worst(&results))
    }

    /// The revocation status of a chain from the CRLs alone (what is known without OCSP);
    /// `Err` when the chain fails for another reason.
    pub fn crl_status(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<RevocationResult, rustls::Error> {
        self.chain
            .verify_client_cert(end_entity, intermediates, now)?;
        let chain = ders(end_entity, intermediates);
        Ok(self
            .index
            .status(&chain, self.scope == RevocationScope::Chain, secs(now)))
    }

    /// The leaf's OCSP answer, asked for now when it is not cached (at most one exchange per
    /// certificate at a time), judged with its CRL under its issuer's policy. Accept when no
    /// policy asks OCSP of it.
    pub async fn confirm(&self, chain: &[CertificateDer<'static>]) -> Decision {
        // Without a policy that asks OCSP there is nothing to wait for: no parse per request.
        if !self.asks_ocsp {
            return Decision::Accept;
        }
        let Some((policy, crl, ask)) = self.leaf_ocsp(chain) else {
            return Decision::Accept;
        };
        let status = match ask {
            Ok(cached) => cached,
            Err(question) => self.ocsp.status(&question, &self.ocsp_settings).await,
        };
        let result = combine(status, crl);
        self.count(result);
        self.decide(policy, result)
    }

    /// When the leaf's policy asks OCSP of it: the policy, the leaf's CRL status, and its
    /// cached OCSP status or (not cached) the question to ask.
    fn leaf_ocsp(
        &self,
        chain: &[CertificateDer<'static>],
    ) -> Option<(usize, RevocationResult, Result<OcspStatus, Question>)> {
        let ders: Vec<&[u8]> = chain.iter().map(|c| c.as_ref()).collect();
        let (leaf_der, rest_der) = ders.split_first()?;
        let (_, leaf) = X509Certificate::from_der(leaf_der).ok()?;
        let policy = self.policy_index(leaf.issuer().as_raw());
        if self.policies[policy].mode == RevocationMode::Off
            || self.policies[policy].order != RevocationOrder::OcspThenCrl
        {
            return None;
        }
        let rest = parse_all(rest_der);
        let pending = self.pending(&leaf, &rest, policy)?;
        let crl = self.index.one(&leaf, &rest, secs(UnixTime::now()));
        let ask = match self.ocsp.peek(&pending.id) {
            Some(cached) => Ok(cached),
            None => Err(self.question(pending)?),
        };
        Some((policy, crl, ask))
    }

    fn count(&self, result: RevocationResult) {
        if let Some(m) = &self.metrics {
            m.revocation_checks
                .with_label_values(&[result.as_str()])
                .inc();
        }
    }
}

fn ders<'a>(
    end_entity: &'a CertificateDer<'_>,
    intermediates: &'a [CertificateDer<'_>],
) -> Vec<&'a [u8]> {
    std::iter::once(end_entity.as_ref())
        .chain(intermediates.iter().map(|c| c.as_ref()))
        .collect()
}

fn secs(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

/// The worst of several results: revoked, then unavailable, then unknown.
fn worst(results: &[RevocationResult]) -> RevocationResult {
    let rank = |r: &RevocationResult| match r {
        RevocationResult::Revoked => 3,
        RevocationResult::Unavailable => 2,
        RevocationResult::Unknown => 1,
        RevocationResult::Good => 0,
    };
    results
        .iter()
        .copied()
        .max_by_key(rank)
        .unwrap_or(RevocationResult::Good)
}

/// The verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RevocationBuildError {
    /// rustls refused the client CA bundle.
    #[error(transparent)]
    Verifier(#[from] VerifierBuilderError),
    /// A CRL cannot be indexed.
    #[error(transparent)]
    Crl(#[from] CrlError),
}

impl ClientCertVerifier for RevocationVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        if !self.on {
            return Ok(verified);
        }
        let chain = ders(end_entity, intermediates);
        let finding = self.find(&chain, secs(now));
        if let Decision::Refuse(result) = self.verdict(&finding.judged) {
            tracing::debug!(
                revocation = result.as_str(),
                "client certificate refused at the handshake (revocation)"
            );
            let error = match result {
                RevocationResult::Revoked => CertificateError::Revoked,
                RevocationResult::Unknown => CertificateError::UnknownRevocationStatus,
                _ => CertificateError::ExpiredRevocationList,
            };
            return Err(rustls::Error::InvalidCertificate(error));
        }
        if let Some((question, _)) = finding.pending {
            // Asked now; the connection's first request waits for the answer.
            self.ocsp.prefetch(question, self.ocsp_settings.clone());
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

impl fmt::Debug for RevocationVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationVerifier")
            .field("policies", &self.policies)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}
