//! Reading an outbound answer under one set of rules: 200 only, redirects never followed, an
//! accepted content type, and a body bounded before (declared length) and while it is read.

use http::{header, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Why an answer was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// A redirect, which is never followed.
    #[error("answered with a redirect ({0}), which is not followed")]
    Redirect(u16),
    /// A status other than 200.
    #[error("answered with status {0}")]
    Status(u16),
    /// Not an accepted content type.
    #[error("answered with an unexpected content type")]
    ContentType,
    /// Larger than the bound (declared or read).
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The body could not be read.
    #[error("the answer could not be read: {0}")]
    Body(#[from] hyper::Error),
}

/// The body of a 200 answer with one of the `content_types`, at most `max` bytes.
pub async fn read_answer(
    response: Response<Incoming>,
    content_types: &[&str],
    max: usize,
) -> Result<Vec<u8>, AnswerError> {
    let status = response.status();
    if status.is_redirection() {
        return Err(AnswerError::Redirect(status.as_u16()));
    }
    if status != StatusCode::OK {
        return Err(AnswerError::Status(status.as_u16()));
    }
    if !crate::media_type::is_one_of(response.headers(), content_types) {
        return Err(AnswerError::ContentType);
    }
    let declared = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(AnswerError::TooLarge(max));
    }
    let mut body = response.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if buf.len() + data.len() > max {
                return Err(AnswerError::TooLarge(max));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}
