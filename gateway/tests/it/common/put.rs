//! `Put`: the registration update a test sends, built from what the test changes. By default
//! `PUT /register/{CLIENT_ID}` with the sample TPP's bearer token and `application/jwt`; a test
//! names only what differs (another ClientId, no token, a content type, extra headers), then
//! sends it with [`super::Harness::put`] or takes the raw bytes with [`Put::bytes`].

use dcrgate_sandbox::client::put_request;

use super::{CLIENT_ID, TOKEN};

/// One `PUT /register/{ClientId}`.
#[derive(Debug, Clone)]
pub struct Put {
    client_id: String,
    bearer: Option<String>,
    content_type: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Put {
    /// The update carrying `body` (usually a signed request object), with the defaults.
    pub fn jwt(body: impl AsRef<[u8]>) -> Self {
        Self {
            client_id: CLIENT_ID.to_owned(),
            bearer: Some(TOKEN.to_owned()),
            content_type: "application/jwt".to_owned(),
            body: body.as_ref().to_vec(),
            headers: Vec::new(),
        }
    }

    /// To another ClientId's path.
    pub fn client_id(mut self, id: &str) -> Self {
        self.client_id = id.to_owned();
        self
    }

    /// With this bearer token instead of the sample one.
    pub fn bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_owned());
        self
    }

    /// Without an `Authorization` header (unless one is added with [`Put::headers`]).
    pub fn no_bearer(mut self) -> Self {
        self.bearer = None;
        self
    }

    /// With this `Content-Type`.
    pub fn content_type(mut self, content_type: &str) -> Self {
        self.content_type = content_type.to_owned();
        self
    }

    /// With these extra header lines, in order, after the gateway-relevant ones.
    pub fn headers(mut self, headers: &[(&str, &str)]) -> Self {
        self.headers.extend(
            headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        self
    }

    /// The request as raw HTTP/1.1 bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        put_request(
            &self.client_id,
            self.bearer.as_deref(),
            &self.content_type,
            &self.body,
            &headers,
        )
    }
}
