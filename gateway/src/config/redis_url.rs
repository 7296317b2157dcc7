//! `redis.url` and `redis.sentinels`: `redis[s]://[user:password@]host[:port][/db]`, parsed and
//! checked at configuration time. Neither the messages nor `Debug` ever print the password.

use std::fmt;

use url::{Host, Url};

/// Redis's port when the URL names none.
const DEFAULT_PORT: u16 = 6379;

/// Why a Redis URL is not acceptable. The messages never include the URL (it may hold a
/// password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisUrlError {
    /// Not a URL.
    #[error("not a URL: {0}")]
    Syntax(url::ParseError),
    /// Neither `redis://` nor `rediss://`.
    #[error("the scheme must be redis:// or rediss:// (TLS); unix sockets are not supported")]
    Scheme,
    /// No host.
    #[error("the URL has no host")]
    NoHost,
    /// Port 0.
    #[error("port 0 is not a port")]
    Port,
    /// A user name with no password.
    #[error("a user name needs a password")]
    UserWithoutPassword,
    /// A path other than `/N`.
    #[error("the path must be empty or /N, N a database number")]
    Database,
    /// Query or fragment present.
    #[error("query strings and fragments are not supported")]
    Options,
}

/// A parsed `redis[s]://[user:password@]host:port[/db]`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    tls: bool,
    host: String,
    port: u16,
    username: Option<Vec<u8>>,
    password: Option<Vec<u8>>,
    db: Option<u32>,
}

/// The password is not printed.
impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("tls", &self.tls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "username",
                &self.username.as_deref().map(String::from_utf8_lossy),
            )
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .finish()
    }
}

impl RedisUrl {
    /// Parses `redis[s]://[user:password@]host[:port][/db]`; user and password are
    /// percent-decoded. A fragment (some clients read `#insecure` as "do not verify the
    /// server") and query options are refused.
    pub fn parse(text: &str) -> Result<Self, RedisUrlError> {
        let url = Url::parse(text).map_err(RedisUrlError::Syntax)?;
        let tls = match url.scheme() {
            "redis" => false,
            "rediss" => true,
            _ => return Err(RedisUrlError::Scheme),
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(RedisUrlError::Options);
        }
        let host = match url.host() {
            Some(Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            _ => return Err(RedisUrlError::NoHost),
        };
        let port = url.port().unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err(RedisUrlError::Port);
        }
        let username = Some(percent_decode(url.username())).filter(|u| !u.is_empty());
        let password = url.password().map(percent_decode);
        if username.is_some() && password.is_none() {
            return Err(RedisUrlError::UserWithoutPassword);
        }
        let db = match url.path() {
            "" | "/" => None,
            path => {
                let digits = path.strip_prefix('/').unwrap_or(path);
                if digits.is_empty()
                    || digits.len() > 9
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(RedisUrlError::Database);
                }
                Some(digits.parse().map_err(|_| RedisUrlError::Database)?)
            }
        };
        Ok(Self {
            tls,
            host,
            port,
            username,
            password,
            db,
        })
    }

    /// Whether the connection is TLS (`rediss://`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The host (name or address).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database selected after connecting, if any.
    pub fn db(&self) -> Option<u32> {
        self.db
    }

    /// The user name (percent-decoded), if any.
    pub fn username(&self) -> Option<&[u8]> {
        self.username.as_deref()
    }

    /// The password (percent-decoded), if any.
    pub fn password(&self) -> Option<&[u8]> {
        self.password.as_deref()
    }
}

/// `%XX` decoded; anything else (an invalid escape included) kept as is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed() {
        let u = RedisUrl::parse("redis://127.0.0.1:7000/3").expect("url");
        assert_eq!((u.host(), u.port(), u.db()), ("127.0.0.1", 7000, Some(3)));
        assert_eq!((u.username.as_deref(), u.password.as_deref()), (None, None));

        let u = RedisUrl::parse("redis://cache.internal").expect("url");
        assert_eq!((u.host(), u.port(), u.db()), ("cache.internal", 6379, None));

        let u = RedisUrl::parse("redis://[::1]:7001/").expect("url");
        assert_eq!((u.host(), u.port(), u.db()), ("::1", 7001, None));

        let u = RedisUrl::parse("redis://:s3cr%20t%40%2F@h:1").expect("url");
        assert_eq!(u.username, None);
        assert_eq!(u.password.as_deref(), Some(&b"s3cr t@/"[..]));

        let u = RedisUrl::parse("redis://gw%2D1:p%zz@h:1/0").expect("url");
        assert_eq!(u.username.as_deref(), Some(&b"gw-1"[..]));
        assert_eq!(u.password.as_deref(), Some(&b"p%zz"[..]));
        assert_eq!(u.db(), Some(0));
    }

    #[test]
    fn bad_urls_are_refused() {
        let err = |s: &str| RedisUrl::parse(s).err();
        assert!(matches!(err("not a url"), Some(RedisUrlError::Syntax(_))));
        assert_eq!(err("redis+sentinel://h:1"), Some(RedisUrlError::Scheme));
        assert_eq!(err("rediss://h:1#insecure"), Some(RedisUrlError::Options));
        assert_eq!(
            err("rediss://h:1/0?insecure=true"),
            Some(RedisUrlError::Options)
        );
        assert!(RedisUrl::parse("rediss://h:1").expect("tls").tls());
        assert!(!RedisUrl::parse("redis://h:1").expect("plain").tls());
        assert_eq!(err("http://h:1"), Some(RedisUrlError::Scheme));
        assert_eq!(err("redis:///0"), Some(RedisUrlError::NoHost));
        assert_eq!(err("redis://h:0"), Some(RedisUrlError::Port));
        assert_eq!(
            err("redis://user@h:1"),
            Some(RedisUrlError::UserWithoutPassword)
        );
        assert_eq!(err("redis://h:1/x"), Some(RedisUrlError::Database));
        assert_eq!(err("redis://h:1/-1"), Some(RedisUrlError::Database));
        assert_eq!(err("redis://h:1/1/2"), Some(RedisUrlError::Database));
        assert_eq!(
            err("redis://h:1/99999999999"),
            Some(RedisUrlError::Database)
        );
        assert_eq!(err("redis://h:1/0?timeout=1"), Some(RedisUrlError::Options));
        assert_eq!(err("redis://h:1/0#x"), Some(RedisUrlError::Options));
    }
}
