//! Reason phrases, copied from Node's `http.STATUS_CODES` (v20).

/// The reason phrase Node sends for `code`, or `"Unknown"` for a code that
/// is not in Node's `STATUS_CODES` table.
///
/// The returned text never contains CR, LF or other control bytes, so it can
/// be written into a status line as-is.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a Teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        509 => "Bandwidth Limit Exceeded",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::reason_phrase;

    #[test]
    fn matches_nodes_status_codes_table() {
        let table = [
            (100, "Continue"),
            (103, "Early Hints"),
            (200, "OK"),
            (226, "IM Used"),
            (308, "Permanent Redirect"),
            (404, "Not Found"),
            (413, "Payload Too Large"),
            (418, "I'm a Teapot"),
            (431, "Request Header Fields Too Large"),
            (505, "HTTP Version Not Supported"),
            (511, "Network Authentication Required"),
        ];
        for (code, text) in table {
            assert_eq!(reason_phrase(code), text, "{code}");
        }
    }

    #[test]
    fn answers_unknown_for_codes_outside_the_table() {
        for code in [0, 99, 199, 306, 420, 599, 999, u16::MAX] {
            assert_eq!(reason_phrase(code), "Unknown", "{code}");
        }
    }
}
