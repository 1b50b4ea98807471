//! Errors that travel through `next.error(..)` to error middleware and the final handler.

use std::fmt;

/// An error in the app layer: a status to answer with and a message.
///
/// `expose` decides whether the final handler may show `message` to the client: true for 4xx
/// created with [`AppError::new`], false for 5xx (the message is logged, the client sees only
/// `Internal Server Error`), as Express's finalhandler does in production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    /// HTTP status (400..=599).
    pub status: u16,
    /// What went wrong.
    pub message: String,
    /// Whether the message may be sent to the client.
    pub expose: bool,
}

impl AppError {
    /// An error answered with `status`; its message is exposed for 4xx only.
    pub fn new(status: u16, message: impl Into<String>) -> AppError {
        let status = if (400..600).contains(&status) {
            status
        } else {
            500
        };
        AppError {
            status,
            message: message.into(),
            expose: status < 500,
        }
    }

    /// A 500 whose message is logged but never sent.
    pub fn internal(message: impl Into<String>) -> AppError {
        AppError::new(500, message)
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for AppError {}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> AppError {
        AppError::internal(e.to_string())
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> AppError {
        AppError::new(400, e.to_string())
    }
}
