//! Routing: only `PUT /register/{ClientId}` is served. Anything else is answered here: 404 for
//! other paths, 405 (with `Allow`) for other methods, 400 for a ClientId that is empty, too
//! long, or not made of RFC 3986 unreserved characters (which rules out encoded `/`, `..`,
//! `%00` and every other path trick before anything is parsed further).

use dcrgate_policies::ErrorCode;
use http::{Method, Uri};

use crate::proxy::rejection::Rejection;

const PREFIX: &str = "/register/";

/// The ClientId of a `PUT /register/{ClientId}` request, or the rejection.
pub fn client_id<'a>(method: &Method, uri: &'a Uri, max_len: usize) -> Result<&'a str, Rejection> {
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(absolute_form());
    }
    let path = uri.path();
    let Some(id) = path.strip_prefix(PREFIX) else {
        return Err(not_found());
    };
    if id.contains('/') {
        return Err(not_found());
    }
    if method != Method::PUT {
        return Err(Rejection::new(
            405,
            ErrorCode::InvalidRequest,
            "method_not_allowed",
            format!("{method} is not allowed on /register/{{ClientId}}; use PUT"),
        )
        .header("Allow", "PUT")
        .closing());
    }
    if uri.query().is_some() {
        return Err(Rejection::new(
            400,
            ErrorCode::InvalidRequest,
            "bad_client_id",
            "/register/{ClientId} takes no query string",
        )
        .closing());
    }
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if id.is_empty()
        || id.len() > max_len
        || !id.bytes().all(unreserved)
        || id.bytes().all(|b| b == b'.')
    {
        return Err(Rejection::new(
            400,
            ErrorCode::InvalidRequest,
            "bad_client_id",
            format!("ClientId must be 1 to {max_len} characters from A-Z a-z 0-9 - . _ ~"),
        )
        .closing());
    }
    Ok(id)
}

/// Refuse a request target that is not origin-form (`/...`). pingora keeps the scheme and
/// authority of an absolute-form target out of the parsed `Uri` (only the raw target has them),
/// so [`client_id`] alone would take `PUT http://host/register/x` for `/register/x`.
pub fn origin_form(raw_target: &[u8]) -> Result<(), Rejection> {
    if raw_target.first() == Some(&b'/') {
        Ok(())
    } else {
        Err(absolute_form())
    }
}

fn absolute_form() -> Rejection {
    Rejection::new(
        400,
        ErrorCode::InvalidRequest,
        "absolute_form",
        "absolute-form request targets are not accepted",
    )
    .closing()
}

fn not_found() -> Rejection {
    Rejection::new(
        404,
        ErrorCode::InvalidRequest,
        "route_not_found",
        "no such endpoint; updates are PUT /register/{ClientId}",
    )
    .closing()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(method: &str, target: &str) -> Result<String, u16> {
        let uri: Uri = target.parse().unwrap();
        client_id(&method.parse().unwrap(), &uri, 64)
            .map(str::to_owned)
            .map_err(|r| r.status)
    }

    #[test]
    fn routes() {
        assert_eq!(
            run("PUT", "/register/abc-123_X.y~z"),
            Ok("abc-123_X.y~z".into())
        );
        assert_eq!(run("GET", "/register/abc"), Err(405));
        assert_eq!(run("DELETE", "/register/abc"), Err(405));
        assert_eq!(run("POST", "/register/abc"), Err(405));
        assert_eq!(run("PUT", "/register"), Err(404));
        assert_eq!(run("PUT", "/register/"), Err(400));
        assert_eq!(run("PUT", "/other"), Err(404));
        assert_eq!(run("PUT", "/register/a/b"), Err(404));
        assert_eq!(run("PUT", "/register/a%2Fb"), Err(400));
        assert_eq!(run("PUT", "/register/%2e%2e"), Err(400));
        assert_eq!(run("PUT", "/register/.."), Err(400));
        assert_eq!(run("PUT", "/register/a%00"), Err(400));
        assert_eq!(run("PUT", "/register/abc?x=1"), Err(400));
        assert_eq!(
            run("PUT", &format!("/register/{}", "a".repeat(65))),
            Err(400)
        );
        assert_eq!(run("PUT", "https://evil.example/register/abc"), Err(400));
    }

    #[test]
    fn only_origin_form_targets() {
        assert!(origin_form(b"/register/abc").is_ok());
        for raw in [
            &b"http://localhost/register/abc"[..],
            b"https://x/register/abc",
            b"*",
            b"",
        ] {
            assert_eq!(origin_form(raw).unwrap_err().status, 400);
        }
    }
}
