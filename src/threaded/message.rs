//! The request and response a threaded handler sees.

use std::borrow::Cow;
use std::net::SocketAddr;

use crate::http::encode;
use crate::http::parse::{RequestHead, Version};
use crate::http::{HeaderError, HeaderValue, IntoHeaderValue};

/// One request: the parsed head and its whole body.
pub struct ThreadedRequest {
    pub(crate) head: RequestHead,
    pub(crate) body: Vec<u8>,
    pub(crate) remote: Option<SocketAddr>,
}

impl ThreadedRequest {
    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> &'static str {
        self.head.method().as_str()
    }

    /// The request-target as sent (Node's `req.url`).
    pub fn target(&self) -> &str {
        self.head.target()
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The query after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.head.version()
    }

    /// The first header named `name` (case-insensitive), when it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header as `(name, value)`, in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.head.headers()
    }

    /// The whole request body (empty when there was none).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }
}

/// The response being built; it is sent when the handler returns.
///
/// `Date`, `Content-Length` and `Connection` are written by the server, as the loop server
/// does; a `Connection: close` set here closes the connection after the response.
pub struct ThreadedResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(Cow<'static, str>, HeaderValue)>,
    pub(crate) body: Vec<u8>,
}

impl ThreadedResponse {
    pub(crate) fn new() -> ThreadedResponse {
        ThreadedResponse {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Sets the status code (default 200).
    pub fn status(&mut self, code: u16) -> &mut Self {
        self.status = code;
        self
    }

    /// The status code that will be sent.
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// Sets a header, replacing any of the same name (case-insensitive). An invalid name or
    /// value is refused and logged (see [`ThreadedResponse::try_set_header`]).
    pub fn set_header(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl IntoHeaderValue,
    ) -> &mut Self {
        if let Err(e) = self.try_set_header(name, value) {
            log::warn!("set_header refused: {e}");
        }
        self
    }

    /// Sets a header, replacing any of the same name.
    ///
    /// # Errors
    /// An invalid name or value (CR/LF injection).
    pub fn try_set_header(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl IntoHeaderValue,
    ) -> Result<(), HeaderError> {
        let name = name.into();
        let value = value.into_header_value();
        if !encode::validate_header_name(&name) {
            return Err(HeaderError::InvalidName);
        }
        if !encode::validate_header_value(&value) {
            return Err(HeaderError::InvalidValue);
        }
        match self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(i) => self.headers[i] = (name, value),
            None => self.headers.push((name, value)),
        }
        Ok(())
    }

    /// Appends body bytes.
    pub fn write(&mut self, chunk: impl AsRef<[u8]>) -> &mut Self {
        self.body.extend_from_slice(chunk.as_ref());
        self
    }

    /// Appends the last body bytes. The response is sent when the handler returns, so this is
    /// [`write`](Self::write) under the loop server's name.
    pub fn end(&mut self, body: impl AsRef<[u8]>) {
        self.write(body);
    }
}
