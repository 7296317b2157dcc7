//! Requests and responses built with the development PKI, parsed and verified: who may sign,
//! which certificate an answer is about, freshness, and truncated input.

use dcrgate_certs::{Authority, IssuedCert, OcspSigner, SubjectSpec};
use dcrgate_ocsp::build::{self, Entry, ECDSA_SHA256_OID};
use dcrgate_ocsp::response::{self, CertStatus};
use dcrgate_ocsp::verify::{verify, Clock, IssuerKey, VerifyError};
use dcrgate_ocsp::{request, CertId, ParseError};
use ring::digest;

const HOUR: i64 = 3600;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn clock() -> Clock {
    Clock {
        now: now(),
        skew: 300,
        max_age: HOUR,
    }
}

struct Pki {
    ca: Authority,
    leaf: IssuedCert,
    id: CertId,
    issuer: IssuerKey,
}

fn pki() -> Pki {
    let ca = Authority::new("TPP issuing CA").unwrap();
    let leaf = ca.issue_client(&SubjectSpec::common_name("tpp")).unwrap();
    let id = CertId::for_certificate(&leaf.cert_der, &ca.cert_der()).unwrap();
    let issuer = IssuerKey::from_certificate(&ca.cert_der()).unwrap();
    Pki {
        ca,
        leaf,
        id,
        issuer,
    }
}

/// Parse `der` and verify it as the answer about `p`'s certificate.
fn judge(der: &[u8], p: &Pki, clock: Clock) -> Result<dcrgate_ocsp::Answer, VerifyError> {
    verify(&response::parse(der).unwrap(), &p.id, &p.issuer, clock)
}

fn answer(
    signer: &OcspSigner,
    id: &CertId,
    status: CertStatus,
    next: Option<i64>,
    attach: bool,
) -> Vec<u8> {
    let t = now();
    let key_sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &signer.key_bits);
    let certs = if attach {
        vec![signer.cert_der.clone()]
    } else {
        Vec::new()
    };
    build::response(
        &[Entry {
            cert_id: id.clone(),
            status,
            this_update: t - 60,
            next_update: next.map(|n| t + n),
        }],
        key_sha1.as_ref(),
        t - 60,
        &certs,
        ECDSA_SHA256_OID,
        |tbs| signer.sign(tbs).unwrap(),
    )
}

#[test]
fn a_request_names_the_certificate_by_its_issuer_and_serial() {
    let p = pki();
    let der = request::encode(&p.id);
    assert_eq!(request::parse(&der).unwrap(), vec![p.id.clone()]);
    assert_eq!(p.id.serial, p.leaf.serial);
    assert_eq!(p.id.issuer_name_hash.len(), 20);
    // The issuer must be the certificate's.
    let other = Authority::new("another CA").unwrap();
    assert!(CertId::for_certificate(&p.leaf.cert_der, &other.cert_der()).is_err());
}

#[test]
fn the_issuer_signs_good_revoked_and_unknown() {
    let p = pki();
    for status in [
        CertStatus::Good,
        CertStatus::Revoked { at: now() - HOUR },
        CertStatus::Unknown,
    ] {
        let der = answer(&p.ca.ocsp_signer(), &p.id, status, Some(HOUR), false);
        let parsed = response::parse(&der).unwrap();
        let a = verify(&parsed, &p.id, &p.issuer, clock()).unwrap();
        assert_eq!(a.status, status);
        assert!(a.next_update.unwrap() > now());
    }
}

#[test]
fn a_delegated_responder_needs_the_issuer_signature_and_ocsp_signing() {
    let p = pki();
    let delegated = p.ca.ocsp_responder(true).unwrap();
    let der = answer(&delegated, &p.id, CertStatus::Good, Some(HOUR), true);
    assert_eq!(judge(&der, &p, clock()).unwrap().status, CertStatus::Good);
    // Its certificate not attached: nothing authorises its key.
    let der = answer(&delegated, &p.id, CertStatus::Good, Some(HOUR), false);
    assert_eq!(judge(&der, &p, clock()), Err(VerifyError::Unauthorised));
    // Without the OCSP-signing extended key usage.
    let plain = p.ca.ocsp_responder(false).unwrap();
    let der = answer(&plain, &p.id, CertStatus::Good, Some(HOUR), true);
    assert_eq!(judge(&der, &p, clock()), Err(VerifyError::Unauthorised));
    // Issued by another CA (with the OCSP-signing usage).
    let other = Authority::new("TPP issuing CA").unwrap();
    let foreign = other.ocsp_responder(true).unwrap();
    let der = answer(&foreign, &p.id, CertStatus::Good, Some(HOUR), true);
    assert_eq!(judge(&der, &p, clock()), Err(VerifyError::Unauthorised));
    // Another CA of the same name signing directly.
    let der = answer(
        &other.ocsp_signer(),
        &p.id,
        CertStatus::Good,
        Some(HOUR),
        false,
    );
    assert_eq!(judge(&der, &p, clock()), Err(VerifyError::Unauthorised));
}

#[test]
fn a_tampered_answer_does_not_verify() {
    let p = pki();
    let der = answer(
        &p.ca.ocsp_signer(),
        &p.id,
        CertStatus::Good,
        Some(HOUR),
        false,
    );
    let mut parsed = response::parse(&der).unwrap();
    parsed.responses[0].status = CertStatus::Good;
    // Flip a byte of the signed data (the status of a revoked answer turned good would be
    // the same attack): the signature no longer matches.
    let last = parsed.tbs.len() - 1;
    parsed.tbs[last] ^= 1;
    assert_eq!(
        verify(&parsed, &p.id, &p.issuer, clock()),
        Err(VerifyError::Unauthorised)
    );
}

#[test]
fn an_answer_about_another_certificate_or_out_of_date_is_refused() {
    let p = pki();
    let other_leaf =
        p.ca.issue_client(&SubjectSpec::common_name("other"))
            .unwrap();
    let other_id = CertId::for_certificate(&other_leaf.cert_der, &p.ca.cert_der()).unwrap();
    let der = answer(
        &p.ca.ocsp_signer(),
        &other_id,
        CertStatus::Good,
        Some(HOUR),
        false,
    );
    assert_eq!(judge(&der, &p, clock()), Err(VerifyError::NotAbout));

    let signer = p.ca.ocsp_signer();
    let stale = answer(&signer, &p.id, CertStatus::Good, Some(-HOUR), false);
    assert_eq!(judge(&stale, &p, clock()), Err(VerifyError::Stale));
    // Without nextUpdate: fresh within the maximum age only.
    let open = answer(&signer, &p.id, CertStatus::Good, None, false);
    let parsed = response::parse(&open).unwrap();
    assert!(verify(&parsed, &p.id, &p.issuer, clock()).is_ok());
    let later = Clock {
        now: now() + 2 * HOUR,
        ..clock()
    };
    assert_eq!(
        verify(&parsed, &p.id, &p.issuer, later),
        Err(VerifyError::Stale)
    );
    // Judged two hours in the past, it is from the future.
    let earlier = Clock {
        now: now() - 2 * HOUR,
        ..clock()
    };
    assert_eq!(
        verify(&parsed, &p.id, &p.issuer, earlier),
        Err(VerifyError::NotYetValid)
    );
}

#[test]
fn an_unsuccessful_status_and_any_truncation_are_errors_not_panics() {
    assert_eq!(
        response::parse(&build::status_only(3)).err(),
        Some(ParseError::Status(3))
    );
    assert!(ParseError::Status(6).to_string().contains("unauthorized"));
    let p = pki();
    let der = answer(
        &p.ca.ocsp_signer(),
        &p.id,
        CertStatus::Good,
        Some(HOUR),
        false,
    );
    for cut in 0..der.len() {
        assert!(
            response::parse(&der[..cut]).is_err(),
            "prefix of {cut} bytes"
        );
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(response::parse(&trailing).is_err());
    let req = request::encode(&p.id);
    for cut in 0..req.len() {
        assert!(request::parse(&req[..cut]).is_err());
    }
    // Every single-byte corruption either parses or is an error; none panics.
    for i in 0..der.len() {
        let mut bad = der.clone();
        bad[i] ^= 0xff;
        let _ = response::parse(&bad);
    }
}
