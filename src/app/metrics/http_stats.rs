//! `http_request_duration_seconds` for one worker: a histogram per (method, route, status),
//! updated on the worker's thread without any lock.

use std::rc::Rc;

/// prom-client's default buckets with 1 ms in front (a fast server answers well under 5 ms).
pub const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `route` label of requests no route matched (404, 405), so raw paths never become
/// labels (their number is unbounded).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `method` label: the standard methods as themselves, any other as `OTHER` (a client
/// could otherwise invent unboundedly many label values).
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// [`method_label`] of a request from a socket: by its parsed method, no string compares.
pub fn method_label_of(method: crate::http::Method) -> &'static str {
    use crate::http::Method;
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        _ => "OTHER",
    }
}

/// One label set's histogram: per-bucket counts (not cumulative; the last is +Inf), sum, count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Counts per bucket of [`BUCKETS`], then the +Inf bucket.
    pub buckets: [u64; BUCKETS.len() + 1],
    /// Sum of the observed durations, seconds.
    pub sum: f64,
    /// Observations.
    pub count: u64,
}

impl Series {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// Label set: method, route pattern, status code.
pub type Labels = (&'static str, Rc<str>, u16);

/// A worker's request histograms. The number of series is bounded by methods (10) x routes
/// registered (+1) x status codes the app sends.
///
/// A vector searched linearly, not a map: a request's labels are the router's shared pattern
/// (`Rc<str>`, compared by pointer first) and `'static` method names, so finding its series is
/// a few pointer compares with no hashing of the route (which a map would do per request).
#[derive(Debug, Default)]
pub struct HttpStats {
    series: Vec<(Labels, Series)>,
    /// Requests started and not yet finished.
    pub in_flight: i64,
}

impl HttpStats {
    /// Records one finished request.
    pub fn observe(&mut self, labels: Labels, seconds: f64) {
        let (method, route, status) = &labels;
        let same = |(m, r, s): &Labels, by_pointer: bool| {
            s == status
                && (std::ptr::eq(*m, *method) || *m == *method)
                && if by_pointer {
                    Rc::ptr_eq(r, route)
                } else {
                    r == route
                }
        };
        let found = self
            .series
            .iter()
            .position(|(l, _)| same(l, true))
            .or_else(|| self.series.iter().position(|(l, _)| same(l, false)));
        let i = found.unwrap_or_else(|| {
            self.series.push((labels, Series::default()));
            self.series.len() - 1
        });
        self.series[i].1.observe(seconds);
    }

    /// A copy to publish (`Send`: labels as owned strings).
    pub fn snapshot(&self) -> Vec<((&'static str, String, u16), Series)> {
        let mut v: Vec<_> = self
            .series
            .iter()
            .map(|((m, r, s), series)| ((*m, r.to_string(), *s), series.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_label_of_a_parsed_method_is_its_label_by_name() {
        for method in crate::http::Method::ALL {
            assert_eq!(
                method_label_of(*method),
                method_label(method.as_str()),
                "{method:?}"
            );
        }
    }
}
