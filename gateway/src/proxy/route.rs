//! Routing: `PUT /register/{ClientId}` always; `POST /register`, `GET` and `DELETE
//! /register/{ClientId}` when configured. Anything else is answered here: 404 for other paths,
//! 405 (with `Allow` listing what is served) for other methods, 400 for a ClientId that is
//! empty, too long, or not made of RFC 3986 unreserved characters (which rules out encoded `/`,
//! `..`, `%00` and every other path trick before anything is parsed further).

use http::{Method, Uri};

use crate::checks;
use crate::config::Routes;
use crate::reason::Reason;
use crate::rejection::Rejection;

const COLLECTION: &str = "/register";
const PREFIX: &str = "/register/";

/// A served registration route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `PUT /register/{ClientId}`.
    Update(&'a str),
    /// `POST /register`.
    Create,
    /// `GET /register/{ClientId}`.
    Read(&'a str),
    /// `DELETE /register/{ClientId}`.
    Delete(&'a str),
}

impl<'a> Route<'a> {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Update(_) => "register_update",
            Route::Create => "register_create",
            Route::Read(_) => "register_read",
            Route::Delete(_) => "register_delete",
        }
    }

    /// The ClientId of the path.
    pub fn client_id(&self) -> Option<&'a str> {
        match self {
            Route::Update(id) | Route::Read(id) | Route::Delete(id) => Some(id),
            Route::Create => None,
        }
    }
}

/// Match a request against the served routes.
pub fn route<'a>(
    method: &Method,
    uri: &'a Uri,
    max_len: usize,
    routes: &Routes,
) -> Result<Route<'a>, Rejection> {
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(absolute_form());
    }
    let path = uri.path();
    if path == COLLECTION {
        if routes.create && method == Method::POST {
            return no_query(uri).map(|()| Route::Create);
        }
        let allow = if routes.create { "POST" } else { "" };
        return Err(not_allowed(method, "/register", allow));
    }
    let Some(id) = path.strip_prefix(PREFIX) else {
        return Err(not_found());
    };
    if id.contains('/') {
        return Err(not_found());
    }
    let route = match *method {
        Method::PUT => Route::Update(id),
        Method::GET if routes.read.is_some() => Route::Read(id),
        Method::DELETE if routes.delete.is_some() => Route::Delete(id),
        _ => {
            let allow = match (routes.read.is_some(), routes.delete.is_some()) {
                (false, false) => "PUT",
                (true, false) => "GET, PUT",
                (false, true) => "PUT, DELETE",
                (true, true) => "GET, PUT, DELETE",
            };
            return Err(not_allowed(method, "/register/{ClientId}", allow));
        }
    };
    no_query(uri)?;
    checks::client_id(id, max_len)?;
    Ok(route)
}

fn no_query(uri: &Uri) -> Result<(), Rejection> {
    match uri.query() {
        None => Ok(()),
        Some(_) => Err(Rejection::new(
            Reason::QueryNotAllowed,
            "registration endpoints take no query string",
        )
        .closing()),
    }
}

fn not_allowed(method: &Method, resource: &str, allow: &'static str) -> Rejection {
    let served = if allow.is_empty() { "none" } else { allow };
    Rejection::new(
        Reason::MethodNotAllowed,
        format!("{method} is not allowed on {resource} (served: {served})"),
    )
    .header("Allow", allow)
    .closing()
}

/// Refuse a request target that is not in origin form (one that does not start with `/`):
/// absolute-form, authority-form and asterisk-form targets.
pub fn origin_form(raw_target: &[u8]) -> Result<(), Rejection> {
    if raw_target.first() == Some(&b'/') {
        Ok(())
    } else {
        Err(absolute_form())
    }
}

fn absolute_form() -> Rejection {
    Rejection::new(
        Reason::AbsoluteForm,
        "absolute-form request targets are not accepted",
    )
    .closing()
}

fn not_found() -> Rejection {
    Rejection::new(
        Reason::RouteNotFound,
        "no such endpoint; registrations are managed at /register and /register/{ClientId}",
    )
    .closing()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bearer::BearerMode;

    const UPDATE_ONLY: Routes = Routes {
        update: BearerMode::Upstream,
        create: false,
        read: None,
        delete: None,
    };
    const ALL: Routes = Routes {
        update: BearerMode::Jwt,
        create: true,
        read: Some(BearerMode::Jwt),
        delete: Some(BearerMode::Jwt),
    };

    fn route_on(routes: &Routes, method: &str, target: &str) -> Result<String, u16> {
        let uri: Uri = target.parse().unwrap();
        route(&method.parse().unwrap(), &uri, 64, routes)
            .map(|r| format!("{}:{}", r.label(), r.client_id().unwrap_or("-")))
            .map_err(|r| r.status())
    }

    fn run(method: &str, target: &str) -> Result<String, u16> {
        route_on(&UPDATE_ONLY, method, target).map(|s| s.rsplit(':').next().unwrap().to_owned())
    }

    #[test]
    fn lifecycle_routes_only_when_configured() {
        for (method, target) in [
            ("POST", "/register"),
            ("GET", "/register/abc"),
            ("DELETE", "/register/abc"),
        ] {
            let uri: Uri = target.parse().unwrap();
            let r = route(&method.parse().unwrap(), &uri, 64, &UPDATE_ONLY).unwrap_err();
            assert_eq!(r.status(), 405, "{method} {target}");
        }
        assert_eq!(
            route_on(&ALL, "POST", "/register"),
            Ok("register_create:-".into())
        );
        assert_eq!(
            route_on(&ALL, "GET", "/register/abc"),
            Ok("register_read:abc".into())
        );
        assert_eq!(
            route_on(&ALL, "DELETE", "/register/abc"),
            Ok("register_delete:abc".into())
        );
        assert_eq!(route_on(&ALL, "PATCH", "/register/abc"), Err(405));
        assert_eq!(route_on(&ALL, "GET", "/register"), Err(405));
        assert_eq!(route_on(&ALL, "GET", "/register/a%2Fb"), Err(400));
        let uri: Uri = "/register/abc".parse().unwrap();
        let r = route(&Method::PATCH, &uri, 64, &ALL).unwrap_err();
        assert!(r
            .headers
            .iter()
            .any(|(n, v)| *n == "Allow" && v == "GET, PUT, DELETE"));
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
        assert_eq!(run("PUT", "/register"), Err(405));
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
            assert_eq!(origin_form(raw).unwrap_err().status(), 400);
        }
    }
}
