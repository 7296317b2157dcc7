//! What the upstream sees of an accepted request: only the client headers the allowlist names
//! (see [`crate::config::forward_headers`]), framed by the gateway (`Content-Length` of the verified
//! body, no `Transfer-Encoding`), plus the gateway's own identity headers, and with
//! `upstream.send_client_cert` the verified certificate as RFC 9440 `Client-Cert` and
//! `Client-Cert-Chain` (byte sequences of the DER).

use pingora::http::RequestHeader;

use super::front_proxy::{encode, CLIENT_CERT, CLIENT_CERT_CHAIN};
use crate::config::ForwardHeaders;
use crate::tls::identity::ClientIdentity;

/// The canonical RFC 4514 subject DN of the verified client certificate (non-ASCII as `\XX`).
pub const DN_HEADER: &str = "X-DCRGate-Client-DN";
/// SHA-256 of the client certificate DER, base64url (RFC 8705 `x5t#S256`).
pub const THUMBPRINT_HEADER: &str = "X-DCRGate-Client-Cert-SHA256";

/// Keep only allowlisted client headers (and `Host`), frame the body, add the verified
/// identity. `body_len` is the verified body's length (`None`: no body is sent).
pub fn rewrite(
    req: &mut RequestHeader,
    identity: &ClientIdentity,
    allow: &ForwardHeaders,
    body_len: Option<usize>,
    send_client_cert: bool,
) -> pingora::Result<()> {
    let doomed: Vec<String> = req
        .headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| *k != "host" && !allow.allows(k))
        .map(str::to_owned)
        .collect();
    for name in doomed {
        req.remove_header(&name);
    }
    if let Some(len) = body_len {
        req.insert_header(http::header::CONTENT_LENGTH, len.to_string())?;
    }
    req.insert_header(DN_HEADER, ascii_dn(&identity.canonical_dn))?;
    req.insert_header(THUMBPRINT_HEADER, identity.thumbprint.as_str())?;
    if send_client_cert {
        if let Some((leaf, rest)) = identity.chain.split_first() {
            req.insert_header(CLIENT_CERT, encode(leaf.as_ref()))?;
            if !rest.is_empty() {
                let chain: Vec<String> = rest.iter().map(|c| encode(c.as_ref())).collect();
                req.insert_header(CLIENT_CERT_CHAIN, chain.join(", "))?;
            }
        }
    }
    Ok(())
}

/// An RFC 4514 string with every non-ASCII or control byte written as a `\XX` escape, which
/// RFC 4514 §2.4 allows and which keeps the header value plain ASCII.
pub fn ascii_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    for c in dn.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_is_hex_escaped() {
        assert_eq!(ascii_dn("CN=Zoë,C=DE"), "CN=Zo\\C3\\AB,C=DE");
        assert_eq!(ascii_dn("CN=plain"), "CN=plain");
    }
}
