//! URL router: one segment trie shared by all HTTP methods.
//!
//! # Patterns (Express 5 / path-to-regexp v8 syntax)
//!
//! * static text: `/api/products`
//! * `:name` parameter: a whole segment (`/u/:id`), or part of one
//!   (`/file.:ext`, `/:file.:ext`, `/:from-:to`); two parameters must be
//!   separated by literal text. Names are `[A-Za-z_$][A-Za-z0-9_$]*`.
//! * `*name` wildcard: the rest of the path, one or more segments. It must be
//!   a whole segment and the last one. Its value is the raw rest joined with
//!   `/` (`/files/*path` on `/files/a/b/c.txt` gives `path = "a/b/c.txt"`),
//!   where Express gives an array of segments. A bare `*` is an error, as in
//!   Express 5.
//! * `{...}` optional groups, nestable: `/users{/:id}`, `/a{/b}{/c}`. Each
//!   pattern is expanded into its alternatives at insert time (at most 64).
//! * `\` escapes the next character; `( ) [ ] ? + !` are reserved (Express 5
//!   throws on them unescaped); ASCII control characters are rejected.
//!
//! Static text is compared byte for byte with the *raw* (still
//! percent-encoded) request path, so write non-ASCII static text encoded.
//!
//! # Matching
//!
//! The caller passes the path without the query string (see
//! [`super::path::split_target`]); an empty path is `/`, and a path not
//! starting with `/` (such as `*` or an absolute URI) is never found.
//!
//! Each trie level consumes one path segment. At every node the children are
//! tried in a fixed order, whatever the registration order:
//!
//! 1. the static child equal to the segment (binary search),
//! 2. segments mixing text and parameters, most literal text first,
//! 3. the `:param` child,
//! 4. the `*wildcard` child.
//!
//! When a deeper level fails the search backtracks to the next choice, so
//! `/u/me` beats `/u/:id`, yet `/u/me/x` still matches `/u/:id/x` when there
//! is no `/u/me/x`. A route only counts when it has a value for the request
//! method, so `POST /u/me` reaches `/u/:id` if only that one has `POST`.
//! Since every node sits at one depth, a lookup visits each node at most once;
//! in practice it costs one binary search per segment.
//!
//! Parameters match non-empty segments of at most
//! [`RouterOptions::max_param_length`] raw bytes (wildcards are not limited).
//! Their values are kept raw and percent-decoded when read, so `%2F` stays
//! inside a parameter as `/`. A matched route whose parameter does not decode
//! (bad `%XX`, non-UTF-8) gives [`Match::BadParam`] (Express answers 400).
//!
//! # Methods
//!
//! Method names are case-sensitive (RFC 9110); insert upper-cases them, so
//! pass request methods as sent. `"*"` registers a route for every method. At
//! a route, the exact method wins, then `HEAD` falls back to `GET`, then `*`.
//! If some route matches the path but none has the method,
//! [`Match::MethodNotAllowed`] lists the allowed methods of all routes that
//! match the path (sorted, `HEAD` added where `GET` exists): use it for the
//! 405 `Allow` header and for automatic `OPTIONS` replies.
//!
//! # Trailing slash and case
//!
//! Unless [`RouterOptions::strict_trailing_slash`], one trailing `/` is
//! ignored in both patterns and paths, so `/a`, `/a/`, pattern `/a/` all
//! match each other, as Express's non-strict mode. With
//! `case_sensitive: false`, static text is compared ignoring ASCII case;
//! parameter values keep their case.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use super::path::percent_decode;

/// At most this many alternatives may come out of a pattern's `{...}` groups.
const MAX_EXPANSIONS: usize = 64;
/// At most this many nested `{` levels.
const MAX_GROUP_DEPTH: usize = 8;
/// Budget of split attempts when matching one mixed segment such as
/// `:a-:b-:c`, so that a crafted path cannot make matching slow.
const MIXED_BUDGET: usize = 256;
/// Parameters stored without heap allocation.
const INLINE_PARAMS: usize = 4;

/// Options of a [`Router`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterOptions {
    /// Compare static text case-sensitively (default `true`, like
    /// find-my-way; Express defaults to insensitive).
    pub case_sensitive: bool,
    /// When `false` (default, Express non-strict), one trailing slash is
    /// ignored: `/a/` matches `/a` and the other way round.
    pub strict_trailing_slash: bool,
    /// Longest raw parameter value in bytes (default 100, like find-my-way).
    /// A longer segment does not match the parameter.
    pub max_param_length: usize,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            case_sensitive: true,
            strict_trailing_slash: false,
            max_param_length: 100,
        }
    }
}

/// Why a route could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The pattern is empty.
    Empty,
    /// The pattern does not start with `/`.
    MissingLeadingSlash,
    /// A `*` without a name (Express 5 throws on it too).
    BareWildcard {
        /// Byte offset in the pattern.
        at: usize,
    },
    /// A `:` without a name.
    UnnamedParam {
        /// Byte offset in the pattern.
        at: usize,
    },
    /// The same parameter name twice in one route.
    DuplicateParam(String),
    /// Another route already has a parameter or wildcard with another name
    /// at the same position (`/a/:id` then `/a/:name`).
    ConflictingParamName {
        /// Name already registered.
        existing: String,
        /// Name in the new pattern.
        new: String,
    },
    /// This method (or `*`) is already registered for an equivalent pattern.
    DuplicateRoute {
        /// The method, upper-cased, or `*`.
        method: String,
    },
    /// A wildcard is followed by more of the pattern.
    WildcardNotLast(String),
    /// A wildcard shares its segment with other text (`/x*rest`).
    WildcardNotWholeSegment(String),
    /// Two parameters with no text between them (`/:a:b`).
    AdjacentParams(String, String),
    /// A `{` without `}` or the reverse.
    UnbalancedBraces {
        /// Byte offset in the pattern.
        at: usize,
    },
    /// A reserved character (`( ) [ ] ? + !`), a control character, or a
    /// dangling `\`.
    InvalidChar {
        /// The character.
        ch: char,
        /// Byte offset in the pattern.
        at: usize,
    },
    /// More than 8 nested groups or more than 64 alternatives.
    TooManyGroups,
    /// The method is neither `*` nor an HTTP token.
    InvalidMethod(String),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Empty => write!(f, "empty route pattern"),
            RouteError::MissingLeadingSlash => write!(f, "route pattern must start with '/'"),
            RouteError::BareWildcard { at } => {
                write!(f, "wildcard without a name at {at} (use *name)")
            }
            RouteError::UnnamedParam { at } => write!(f, "parameter without a name at {at}"),
            RouteError::DuplicateParam(n) => write!(f, "duplicate parameter name '{n}'"),
            RouteError::ConflictingParamName { existing, new } => write!(
                f,
                "parameter '{new}' conflicts with '{existing}' at the same position"
            ),
            RouteError::DuplicateRoute { method } => {
                write!(f, "route already registered for method {method}")
            }
            RouteError::WildcardNotLast(n) => write!(f, "wildcard '*{n}' must be last"),
            RouteError::WildcardNotWholeSegment(n) => {
                write!(f, "wildcard '*{n}' must be a whole segment")
            }
            RouteError::AdjacentParams(a, b) => {
                write!(f, "parameters '{a}' and '{b}' need text between them")
            }
            RouteError::UnbalancedBraces { at } => write!(f, "unbalanced braces at {at}"),
            RouteError::InvalidChar { ch, at } => {
                write!(f, "invalid character {ch:?} at {at} (escape it with \\)")
            }
            RouteError::TooManyGroups => write!(f, "too many optional groups"),
            RouteError::InvalidMethod(m) => write!(f, "invalid method {m:?}"),
        }
    }
}

impl std::error::Error for RouteError {}

/// Route parameters of a match: names borrowed from the router (`'r`), raw
/// values borrowed from the path (`'p`). Up to 4 are stored inline without
/// allocating. Values are percent-decoded when read.
#[derive(Debug, Clone)]
pub struct Params<'r, 'p> {
    inline: [(&'r str, &'p str); INLINE_PARAMS],
    len: usize,
    spill: Vec<(&'r str, &'p str)>,
}

impl Default for Params<'_, '_> {
    fn default() -> Self {
        Params {
            inline: [("", ""); INLINE_PARAMS],
            len: 0,
            spill: Vec::new(),
        }
    }
}

impl<'r, 'p> Params<'r, 'p> {
    fn push(&mut self, name: &'r str, value: &'p str) {
        if self.len < INLINE_PARAMS {
            self.inline[self.len] = (name, value);
        } else {
            self.spill.push((name, value));
        }
        self.len += 1;
    }

    fn truncate(&mut self, len: usize) {
        while self.len > len {
            self.len -= 1;
            if self.len >= INLINE_PARAMS {
                self.spill.pop();
            }
        }
    }

    fn at(&self, i: usize) -> Option<(&'r str, &'p str)> {
        if i >= self.len {
            None
        } else if i < INLINE_PARAMS {
            self.inline.get(i).copied()
        } else {
            self.spill.get(i - INLINE_PARAMS).copied()
        }
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when the route has no parameter.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The percent-decoded value of parameter `name` (borrowed when it has no
    /// `%`). Values of a [`Match::Found`] always decode.
    pub fn get(&self, name: &str) -> Option<Cow<'p, str>> {
        self.get_raw(name).map(decode_or_raw)
    }

    /// The raw (still percent-encoded) value of parameter `name`.
    pub fn get_raw(&self, name: &str) -> Option<&'p str> {
        self.iter_raw().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// `(name, decoded value)` pairs in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&'r str, Cow<'p, str>)> + '_ {
        self.iter_raw().map(|(n, v)| (n, decode_or_raw(v)))
    }

    /// `(name, raw value)` pairs in pattern order.
    pub fn iter_raw(&self) -> impl Iterator<Item = (&'r str, &'p str)> + '_ {
        (0..self.len).filter_map(move |i| self.at(i))
    }
}

fn decode_or_raw(raw: &str) -> Cow<'_, str> {
    percent_decode(raw).unwrap_or(Cow::Borrowed(raw))
}

/// Result of [`Router::lookup`].
#[derive(Debug)]
pub enum Match<'r, 'p, T> {
    /// A route matched the path and the method.
    Found {
        /// The value given to [`Router::insert`].
        value: &'r T,
        /// Its parameters.
        params: Params<'r, 'p>,
    },
    /// Routes match the path, none for this method (answer 405 with
    /// `Allow`, or an automatic `OPTIONS` reply).
    MethodNotAllowed {
        /// Allowed methods, sorted, with `HEAD` where `GET` is.
        allowed: Vec<&'r str>,
    },
    /// The route matched but parameter `name` is not valid percent-encoded
    /// UTF-8 (answer 400, as Express does).
    BadParam {
        /// Name of the first bad parameter.
        name: &'r str,
    },
    /// No route matches the path.
    NotFound,
}

// ---------------------------------------------------------------------------
// Pattern compilation

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Text(String),
    Param(String),
    Wild(String),
    Group(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Param(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Static(String),
    Param(String),
    Mixed(Vec<Part>),
    Wild(String),
}

struct PatternParser<'a> {
    s: &'a str,
    pos: usize,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

impl PatternParser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos..).and_then(|r| r.chars().next())
    }

    fn bump(&mut self) -> Option<(usize, char)> {
        let c = self.peek()?;
        let at = self.pos;
        self.pos += c.len_utf8();
        Some((at, c))
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        if let Some(c) = self.peek().filter(|&c| is_name_start(c)) {
            n.push(c);
            self.pos += 1;
            while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
                n.push(c);
                self.pos += 1;
            }
        }
        n
    }

    fn seq(&mut self, depth: usize, open_at: Option<usize>) -> Result<Vec<Tok>, RouteError> {
        let mut out: Vec<Tok> = Vec::new();
        let push_char = |out: &mut Vec<Tok>, c: char| match out.last_mut() {
            Some(Tok::Text(t)) => t.push(c),
            _ => out.push(Tok::Text(c.to_string())),
        };
        loop {
            let Some((at, c)) = self.bump() else {
                return match open_at {
                    Some(at) => Err(RouteError::UnbalancedBraces { at }),
                    None => Ok(out),
                };
            };
            match c {
                '{' => {
                    if depth >= MAX_GROUP_DEPTH {
                        return Err(RouteError::TooManyGroups);
                    }
                    let inner = self.seq(depth + 1, Some(at))?;
                    out.push(Tok::Group(inner));
                }
                '}' => {
                    return match open_at {
                        Some(_) => Ok(out),
                        None => Err(RouteError::UnbalancedBraces { at }),
                    }
                }
                ':' => {
                    let n = self.name();
                    if n.is_empty() {
                        return Err(RouteError::UnnamedParam { at });
                    }
                    out.push(Tok::Param(n));
                }
                '*' => {
                    let n = self.name();
                    if n.is_empty() {
                        return Err(RouteError::BareWildcard { at });
                    }
                    out.push(Tok::Wild(n));
                }
                '\\' => match self.bump() {
                    Some((_, c)) if !c.is_control() => push_char(&mut out, c),
                    Some((at, ch)) => return Err(RouteError::InvalidChar { ch, at }),
                    None => return Err(RouteError::InvalidChar { ch: '\\', at }),
                },
                '(' | ')' | '[' | ']' | '?' | '+' | '!' => {
                    return Err(RouteError::InvalidChar { ch: c, at })
                }
                c if c.is_control() => return Err(RouteError::InvalidChar { ch: c, at }),
                c => push_char(&mut out, c),
            }
        }
    }
}

/// Flattened alternative: no groups left.
#[derive(Debug, Clone)]
enum Flat {
    Text(String),
    Param(String),
    Wild(String),
}

fn expand(toks: &[Tok]) -> Result<Vec<Vec<Flat>>, RouteError> {
    let mut alts: Vec<Vec<Flat>> = vec![Vec::new()];
    for tok in toks {
        match tok {
            Tok::Group(inner) => {
                let inner_alts = expand(inner)?;
                if alts.len().saturating_mul(inner_alts.len() + 1) > MAX_EXPANSIONS {
                    return Err(RouteError::TooManyGroups);
                }
                let mut next = Vec::with_capacity(alts.len() * (inner_alts.len() + 1));
                for a in &alts {
                    next.push(a.clone());
                    for i in &inner_alts {
                        let mut v = a.clone();
                        v.extend(i.iter().cloned());
                        next.push(v);
                    }
                }
                alts = next;
            }
            Tok::Text(t) => alts.iter_mut().for_each(|a| a.push(Flat::Text(t.clone()))),
            Tok::Param(n) => alts.iter_mut().for_each(|a| a.push(Flat::Param(n.clone()))),
            Tok::Wild(n) => alts.iter_mut().for_each(|a| a.push(Flat::Wild(n.clone()))),
        }
    }
    Ok(alts)
}

enum RawPart {
    Lit(String),
    Param(String),
    Wild(String),
}

/// Splits one alternative into segments (after the leading `/`).
fn segmentize(flat: &[Flat], strict: bool) -> Result<Vec<Seg>, RouteError> {
    let mut raw_segs: Vec<Vec<RawPart>> = Vec::new();
    let mut cur: Vec<RawPart> = Vec::new();
    let mut lit = String::new();
    let mut started = false;
    let mut any = false;
    let flush = |lit: &mut String, cur: &mut Vec<RawPart>| {
        if !lit.is_empty() {
            cur.push(RawPart::Lit(std::mem::take(lit)));
        }
    };
    for f in flat {
        match f {
            Flat::Text(t) => {
                for c in t.chars() {
                    if !started {
                        // The pattern was checked to start with '/'.
                        started = true;
                        continue;
                    }
                    any = true;
                    if c == '/' {
                        flush(&mut lit, &mut cur);
                        raw_segs.push(std::mem::take(&mut cur));
                    } else {
                        lit.push(c);
                    }
                }
            }
            Flat::Param(n) | Flat::Wild(n) => {
                if !started {
                    return Err(RouteError::MissingLeadingSlash);
                }
                any = true;
                flush(&mut lit, &mut cur);
                cur.push(match f {
                    Flat::Wild(_) => RawPart::Wild(n.clone()),
                    _ => RawPart::Param(n.clone()),
                });
            }
        }
    }
    flush(&mut lit, &mut cur);
    if any {
        raw_segs.push(cur);
    }
    if !strict && raw_segs.last().is_some_and(|s| s.is_empty()) {
        raw_segs.pop();
        if raw_segs.len() == 1 && raw_segs[0].is_empty() {
            // "//" without strict is "/".
            raw_segs.clear();
        }
    }

    let count = raw_segs.len();
    let mut segs = Vec::with_capacity(count);
    let mut names: Vec<String> = Vec::new();
    let mut add_name = |n: &str| {
        if names.iter().any(|m| m == n) {
            Err(RouteError::DuplicateParam(n.to_string()))
        } else {
            names.push(n.to_string());
            Ok(())
        }
    };
    for (i, parts) in raw_segs.into_iter().enumerate() {
        if let Some(RawPart::Wild(n)) = parts.iter().find(|p| matches!(p, RawPart::Wild(_))) {
            if i + 1 != count || !matches!(parts.last(), Some(RawPart::Wild(_))) {
                return Err(RouteError::WildcardNotLast(n.clone()));
            }
            if parts.len() != 1 {
                return Err(RouteError::WildcardNotWholeSegment(n.clone()));
            }
        }
        let seg = match parts.as_slice() {
            [] => Seg::Static(String::new()),
            [RawPart::Lit(l)] => Seg::Static(l.clone()),
            [RawPart::Param(n)] => {
                add_name(n)?;
                Seg::Param(n.clone())
            }
            [RawPart::Wild(n)] => {
                add_name(n)?;
                Seg::Wild(n.clone())
            }
            _ => {
                let mut out = Vec::with_capacity(parts.len());
                for p in parts {
                    match p {
                        RawPart::Lit(l) => out.push(Part::Lit(l)),
                        RawPart::Param(n) => {
                            if let Some(Part::Param(prev)) = out.last() {
                                return Err(RouteError::AdjacentParams(prev.clone(), n));
                            }
                            add_name(&n)?;
                            out.push(Part::Param(n));
                        }
                        // Rejected above.
                        RawPart::Wild(n) => return Err(RouteError::WildcardNotWholeSegment(n)),
                    }
                }
                Seg::Mixed(out)
            }
        };
        segs.push(seg);
    }
    Ok(segs)
}

/// Compiles a pattern into its alternatives (deduplicated).
fn compile(pattern: &str, strict: bool) -> Result<Vec<Vec<Seg>>, RouteError> {
    if pattern.is_empty() {
        return Err(RouteError::Empty);
    }
    if pattern.starts_with('*') && !pattern[1..].starts_with(is_name_start) {
        // Express 4's catch-all `*`; Express 5 rejects it too.
        return Err(RouteError::BareWildcard { at: 0 });
    }
    if !pattern.starts_with('/') {
        return Err(RouteError::MissingLeadingSlash);
    }
    let toks = PatternParser { s: pattern, pos: 0 }.seq(0, None)?;
    let mut out: Vec<Vec<Seg>> = Vec::new();
    for alt in expand(&toks)? {
        let segs = segmentize(&alt, strict)?;
        if !out.contains(&segs) {
            out.push(segs);
        }
    }
    Ok(out)
}

fn parse_method(method: &str) -> Result<Option<Box<str>>, RouteError> {
    if method == "*" {
        return Ok(None);
    }
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || !method.bytes().all(tchar) {
        return Err(RouteError::InvalidMethod(method.to_string()));
    }
    Ok(Some(method.to_ascii_uppercase().into_boxed_str()))
}

// ---------------------------------------------------------------------------
// Trie

#[derive(Debug, Clone, Default)]
struct Terminal {
    /// Sorted by method name.
    methods: Vec<(Box<str>, usize)>,
    any: Option<usize>,
}

impl Terminal {
    fn is_empty(&self) -> bool {
        self.methods.is_empty() && self.any.is_none()
    }

    fn exact(&self, method: &str) -> Option<usize> {
        self.methods
            .iter()
            .find(|(m, _)| &**m == method)
            .map(|&(_, i)| i)
    }

    fn get(&self, method: &str) -> Option<usize> {
        self.exact(method)
            .or_else(|| {
                if method == "HEAD" {
                    self.exact("GET")
                } else {
                    None
                }
            })
            .or(self.any)
    }

    fn check(&self, method: &Option<Box<str>>) -> Result<(), RouteError> {
        let taken = match method {
            Some(m) => self.exact(m).is_some(),
            None => self.any.is_some(),
        };
        if taken {
            Err(RouteError::DuplicateRoute {
                method: method.as_deref().unwrap_or("*").to_string(),
            })
        } else {
            Ok(())
        }
    }

    fn add(&mut self, method: &Option<Box<str>>, idx: usize) -> Result<(), RouteError> {
        self.check(method)?;
        match method {
            Some(m) => {
                let at = self
                    .methods
                    .binary_search_by(|(k, _)| (**k).cmp(m))
                    .unwrap_or_else(|e| e);
                self.methods.insert(at, (m.clone(), idx));
            }
            None => self.any = Some(idx),
        }
        Ok(())
    }

    fn collect<'r>(&'r self, out: &mut Vec<&'r str>) {
        for (m, _) in &self.methods {
            out.push(m);
            if &**m == "GET" {
                out.push("HEAD");
            }
        }
        if self.any.is_some() {
            out.push("*");
        }
    }
}

#[derive(Debug, Clone)]
struct ParamChild {
    name: Box<str>,
    node: Node,
}

#[derive(Debug, Clone)]
struct WildChild {
    name: Box<str>,
    terminal: Terminal,
}

#[derive(Debug, Clone)]
struct MixedChild {
    parts: Vec<Part>,
    /// Shape: literal text (case-folded when insensitive), params as NUL.
    key: String,
    lit_len: usize,
    node: Node,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Sorted with [`cmp_key`].
    statics: Vec<(Box<str>, Node)>,
    /// `static_head` of each key in `statics`, same order: lookups scan these
    /// words instead of comparing strings (see [`Node::lookup_static`]).
    static_heads: Vec<u64>,
    /// Sorted by most literal text first, then shape.
    mixed: Vec<MixedChild>,
    param: Option<Box<ParamChild>>,
    wildcard: Option<Box<WildChild>>,
    terminal: Terminal,
}

fn cmp_key(a: &str, b: &str, ci: bool) -> Ordering {
    if ci {
        a.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    } else {
        a.cmp(b)
    }
}

fn mixed_key(parts: &[Part], ci: bool) -> (String, usize) {
    let mut key = String::new();
    let mut lit_len = 0;
    for p in parts {
        match p {
            Part::Lit(l) => {
                lit_len += l.len();
                if ci {
                    key.push_str(&l.to_ascii_lowercase());
                } else {
                    key.push_str(l);
                }
            }
            Part::Param(_) => key.push('\0'),
        }
    }
    (key, lit_len)
}

fn param_names(parts: &[Part]) -> impl Iterator<Item = &str> {
    parts.iter().filter_map(|p| match p {
        Part::Param(n) => Some(n.as_str()),
        Part::Lit(_) => None,
    })
}

fn check_names<'a>(
    existing: impl Iterator<Item = &'a str>,
    new: impl Iterator<Item = &'a str>,
) -> Result<(), RouteError> {
    for (e, n) in existing.zip(new) {
        if e != n {
            return Err(RouteError::ConflictingParamName {
                existing: e.to_string(),
                new: n.to_string(),
            });
        }
    }
    Ok(())
}

/// A segment's length (capped at 255) and first 7 bytes (case-folded when
/// `ci`) packed in one word. Equal segments have equal heads; a segment of at
/// most 7 bytes equals a key exactly when their heads are equal.
fn static_head(seg: &str, ci: bool) -> u64 {
    let bytes = seg.as_bytes();
    let mut head = (bytes.len().min(255) as u64) << 56;
    for (i, &b) in bytes.iter().take(7).enumerate() {
        let b = if ci { b.to_ascii_lowercase() } else { b };
        head |= u64::from(b) << (8 * i);
    }
    head
}

/// Above this many static children a lookup binary-searches the keys instead
/// of scanning their heads.
const LINEAR_STATICS: usize = 32;

impl Node {
    fn find_static(&self, seg: &str, ci: bool) -> Result<usize, usize> {
        self.statics.binary_search_by(|(k, _)| cmp_key(k, seg, ci))
    }

    /// The static child equal to `seg`: the hot path of [`walk`]. Scans the
    /// packed heads (no string comparison for segments of up to 7 bytes).
    fn lookup_static(&self, seg: &str, ci: bool) -> Option<&Node> {
        if self.statics.len() > LINEAR_STATICS {
            return self.find_static(seg, ci).ok().map(|i| &self.statics[i].1);
        }
        let head = static_head(seg, ci);
        let i = self.static_heads.iter().enumerate().find_map(|(i, &h)| {
            let hit = h == head
                && (seg.len() <= 7 || cmp_key(&self.statics[i].0, seg, ci) == Ordering::Equal);
            hit.then_some(i)
        })?;
        Some(&self.statics[i].1)
    }

    fn find_mixed(&self, parts: &[Part], ci: bool) -> Result<Option<&MixedChild>, RouteError> {
        let (key, _) = mixed_key(parts, ci);
        match self.mixed.iter().find(|m| m.key == key) {
            Some(m) => {
                check_names(param_names(&m.parts), param_names(parts))?;
                Ok(Some(m))
            }
            None => Ok(None),
        }
    }

    /// Read-only dry run of [`Node::insert`].
    fn check(&self, segs: &[Seg], method: &Option<Box<str>>, ci: bool) -> Result<(), RouteError> {
        let Some((seg, rest)) = segs.split_first() else {
            return self.terminal.check(method);
        };
        match seg {
            Seg::Static(s) => match self.find_static(s, ci) {
                Ok(i) => self.statics[i].1.check(rest, method, ci),
                Err(_) => Ok(()),
            },
            Seg::Param(n) => match &self.param {
                Some(p) => {
                    check_names(std::iter::once(&*p.name), std::iter::once(n.as_str()))?;
                    p.node.check(rest, method, ci)
                }
                None => Ok(()),
            },
            Seg::Mixed(parts) => match self.find_mixed(parts, ci)? {
                Some(m) => m.node.check(rest, method, ci),
                None => Ok(()),
            },
            Seg::Wild(n) => match &self.wildcard {
                Some(w) => {
                    check_names(std::iter::once(&*w.name), std::iter::once(n.as_str()))?;
                    w.terminal.check(method)
                }
                None => Ok(()),
            },
        }
    }

    fn insert(
        &mut self,
        segs: &[Seg],
        method: &Option<Box<str>>,
        idx: usize,
        ci: bool,
    ) -> Result<(), RouteError> {
        let Some((seg, rest)) = segs.split_first() else {
            return self.terminal.add(method, idx);
        };
        match seg {
            Seg::Static(s) => {
                let i = match self.find_static(s, ci) {
                    Ok(i) => i,
                    Err(i) => {
                        self.statics
                            .insert(i, (s.clone().into_boxed_str(), Node::default()));
                        self.static_heads.insert(i, static_head(s, ci));
                        i
                    }
                };
                self.statics[i].1.insert(rest, method, idx, ci)
            }
            Seg::Param(n) => {
                let p = self.param.get_or_insert_with(|| {
                    Box::new(ParamChild {
                        name: n.clone().into_boxed_str(),
                        node: Node::default(),
                    })
                });
                check_names(std::iter::once(&*p.name), std::iter::once(n.as_str()))?;
                p.node.insert(rest, method, idx, ci)
            }
            Seg::Mixed(parts) => {
                let (key, lit_len) = mixed_key(parts, ci);
                let pos = match self.mixed.iter().position(|m| m.key == key) {
                    Some(pos) => {
                        check_names(param_names(&self.mixed[pos].parts), param_names(parts))?;
                        pos
                    }
                    None => {
                        self.mixed.push(MixedChild {
                            parts: parts.clone(),
                            key: key.clone(),
                            lit_len,
                            node: Node::default(),
                        });
                        self.mixed
                            .sort_by(|a, b| b.lit_len.cmp(&a.lit_len).then(a.key.cmp(&b.key)));
                        self.mixed.iter().position(|m| m.key == key).unwrap_or(0)
                    }
                };
                match self.mixed.get_mut(pos) {
                    Some(m) => m.node.insert(rest, method, idx, ci),
                    None => Ok(()),
                }
            }
            Seg::Wild(n) => {
                let w = self.wildcard.get_or_insert_with(|| {
                    Box::new(WildChild {
                        name: n.clone().into_boxed_str(),
                        terminal: Terminal::default(),
                    })
                });
                check_names(std::iter::once(&*w.name), std::iter::once(n.as_str()))?;
                w.terminal.add(method, idx)
            }
        }
    }
}

fn starts_with_ci(s: &str, lit: &str, ci: bool) -> bool {
    match s.as_bytes().get(..lit.len()) {
        Some(head) if ci => head.eq_ignore_ascii_case(lit.as_bytes()),
        Some(head) => head == lit.as_bytes(),
        None => false,
    }
}

struct Ctx {
    ci: bool,
    max: usize,
}

/// Matches one segment against mixed parts, pushing parameters. On failure
/// the caller truncates `params`.
fn match_parts<'r, 'p>(
    parts: &'r [Part],
    s: &'p str,
    ctx: &Ctx,
    params: &mut Params<'r, 'p>,
    budget: &mut usize,
) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match parts.split_first() {
        None => s.is_empty(),
        Some((Part::Lit(l), rest)) => {
            starts_with_ci(s, l, ctx.ci)
                && s.get(l.len()..)
                    .is_some_and(|tail| match_parts(rest, tail, ctx, params, budget))
        }
        Some((Part::Param(n), rest)) => match rest.first() {
            None => {
                if s.is_empty() || s.len() > ctx.max {
                    return false;
                }
                params.push(n, s);
                true
            }
            Some(Part::Lit(l)) => {
                // Greedy: try the last occurrence of the next literal first.
                let mark = params.len();
                let hi = s.len().saturating_sub(l.len()).min(ctx.max);
                for i in (1..=hi).rev() {
                    if *budget == 0 {
                        return false;
                    }
                    let (Some(head), Some(tail)) = (s.get(..i), s.get(i..)) else {
                        continue;
                    };
                    if !starts_with_ci(tail, l, ctx.ci) {
                        continue;
                    }
                    params.push(n, head);
                    if match_parts(rest, tail, ctx, params, budget) {
                        return true;
                    }
                    params.truncate(mark);
                }
                false
            }
            // Adjacent params are rejected at compile time.
            Some(Part::Param(_)) => false,
        },
    }
}

/// Depth-first search; `visit` returns `true` to stop (params then hold the
/// match). `start` is the byte offset of the next segment in `rest`, `None`
/// once the path is consumed.
fn walk<'r, 'p, F>(
    node: &'r Node,
    rest: &'p str,
    start: Option<usize>,
    ctx: &Ctx,
    params: &mut Params<'r, 'p>,
    visit: &mut F,
) -> bool
where
    F: FnMut(&'r Terminal) -> bool,
{
    let Some(s) = start else {
        return !node.terminal.is_empty() && visit(&node.terminal);
    };
    let Some(tail) = rest.get(s..) else {
        return false;
    };
    let (seg, next) = match tail.find('/') {
        Some(i) => (&tail[..i], Some(s + i + 1)),
        None => (tail, None),
    };
    if let Some(child) = node.lookup_static(seg, ctx.ci) {
        if walk(child, rest, next, ctx, params, visit) {
            return true;
        }
    }
    let mark = params.len();
    for m in &node.mixed {
        let mut budget = MIXED_BUDGET;
        if match_parts(&m.parts, seg, ctx, params, &mut budget)
            && walk(&m.node, rest, next, ctx, params, visit)
        {
            return true;
        }
        params.truncate(mark);
    }
    if let Some(p) = &node.param {
        if !seg.is_empty() && seg.len() <= ctx.max {
            params.push(&p.name, seg);
            if walk(&p.node, rest, next, ctx, params, visit) {
                return true;
            }
            params.truncate(mark);
        }
    }
    if let Some(w) = &node.wildcard {
        if !tail.is_empty() && !w.terminal.is_empty() {
            params.push(&w.name, tail);
            if visit(&w.terminal) {
                return true;
            }
            params.truncate(mark);
        }
    }
    false
}

// ---------------------------------------------------------------------------
// Router

/// URL router mapping `(method, path)` to a value of type `T` (for example a
/// handler index). See the [module documentation](self) for the rules.
#[derive(Debug, Clone)]
pub struct Router<T> {
    root: Node,
    values: Vec<T>,
    opts: RouterOptions,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Router<T> {
    /// An empty router with default [`RouterOptions`].
    pub fn new() -> Self {
        Self::with_options(RouterOptions::default())
    }

    /// An empty router with the given options.
    pub fn with_options(opts: RouterOptions) -> Self {
        Router {
            root: Node::default(),
            values: Vec::new(),
            opts,
        }
    }

    /// The router's options.
    pub fn options(&self) -> &RouterOptions {
        &self.opts
    }

    /// Number of successful [`Router::insert`] calls.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// `true` when no route is registered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Registers `value` for `method` (`"GET"`, ..., upper-cased here; or
    /// `"*"` for every method) and `pattern`. All alternatives of the
    /// pattern's optional groups are registered, or none: on `Err` the router
    /// is unchanged.
    pub fn insert(&mut self, method: &str, pattern: &str, value: T) -> Result<(), RouteError> {
        let method = parse_method(method)?;
        let ci = !self.opts.case_sensitive;
        let alts = compile(pattern, self.opts.strict_trailing_slash)?;
        // Conflicts between the alternatives themselves.
        let mut scratch = Node::default();
        for segs in &alts {
            scratch.insert(segs, &method, 0, ci)?;
        }
        // Conflicts with routes already registered.
        for segs in &alts {
            self.root.check(segs, &method, ci)?;
        }
        let idx = self.values.len();
        for segs in &alts {
            self.root.insert(segs, &method, idx, ci)?;
        }
        self.values.push(value);
        Ok(())
    }

    /// Normalises a path; returns the part after the leading `/` and the
    /// start of its first segment.
    fn prepare<'p>(&self, path: &'p str) -> Option<(&'p str, Option<usize>)> {
        let path = if path.is_empty() { "/" } else { path };
        let mut rest = path.strip_prefix('/')?;
        if !self.opts.strict_trailing_slash && !rest.is_empty() {
            rest = rest.strip_suffix('/').unwrap_or(rest);
        }
        let start = if rest.is_empty() { None } else { Some(0) };
        Some((rest, start))
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            ci: !self.opts.case_sensitive,
            max: self.opts.max_param_length,
        }
    }

    /// Finds the route for `method` and `path` (the path only: the caller
    /// removes the query string first, e.g. with
    /// [`super::path::split_target`]).
    pub fn lookup<'r, 'p>(&'r self, method: &str, path: &'p str) -> Match<'r, 'p, T> {
        let Some((rest, start)) = self.prepare(path) else {
            return Match::NotFound;
        };
        let ctx = self.ctx();
        let mut params = Params::default();
        let mut found = None;
        let mut path_matched = false;
        let hit = walk(&self.root, rest, start, &ctx, &mut params, &mut |t| {
            path_matched = true;
            found = t.get(method);
            found.is_some()
        });
        match found.and_then(|i| self.values.get(i)) {
            Some(value) if hit => {
                for (name, raw) in params.iter_raw() {
                    if percent_decode(raw).is_none() {
                        return Match::BadParam { name };
                    }
                }
                Match::Found { value, params }
            }
            _ if path_matched => Match::MethodNotAllowed {
                allowed: self.allowed_methods(path),
            },
            _ => Match::NotFound,
        }
    }

    /// Methods accepted at `path`, from all routes that match it: sorted,
    /// deduplicated, with `HEAD` where `GET` is, and `"*"` if an all-methods
    /// route matches. Empty when nothing matches the path.
    pub fn allowed_methods(&self, path: &str) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some((rest, start)) = self.prepare(path) {
            let ctx = self.ctx();
            let mut params = Params::default();
            walk(&self.root, rest, start, &ctx, &mut params, &mut |t| {
                t.collect(&mut out);
                false
            });
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Router<&'static str>;

    fn build(opts: RouterOptions, routes: &[(&str, &'static str)]) -> R {
        let mut r = Router::with_options(opts);
        for (m, p) in routes {
            r.insert(m, p, *p)
                .unwrap_or_else(|e| panic!("{m} {p}: {e}"));
        }
        r
    }

    fn get(routes: &[(&str, &'static str)]) -> R {
        build(RouterOptions::default(), routes)
    }

    /// `Some((pattern, "k=v,k=v"))` for a match, `None` otherwise.
    fn hit(r: &R, method: &str, path: &str) -> Option<(&'static str, String)> {
        match r.lookup(method, path) {
            Match::Found { value, params } => {
                let ps: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                Some((*value, ps.join(",")))
            }
            _ => None,
        }
    }

    /// (method, path, expected (pattern, "k=v,...")).
    type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);

    fn check(r: &R, cases: &[Case]) {
        for (method, path, want) in cases {
            let got = hit(r, method, path);
            let got = got.as_ref().map(|(p, s)| (*p, s.as_str()));
            assert_eq!(got, *want, "{method} {path}");
        }
    }

    #[test]
    fn static_beats_param_beats_wildcard_in_both_registration_orders() {
        let routes = [
            ("GET", "/u/me"),
            ("GET", "/u/:id"),
            ("GET", "/u/*rest"),
            ("GET", "/f/:name.json"),
        ];
        let mut rev = routes;
        rev.reverse();
        for order in [&routes, &rev] {
            let r = get(order);
            check(
                &r,
                &[
                    ("GET", "/u/me", Some(("/u/me", ""))),
                    ("GET", "/u/42", Some(("/u/:id", "id=42"))),
                    ("GET", "/u/a/b", Some(("/u/*rest", "rest=a/b"))),
                    ("GET", "/u/me/x", Some(("/u/*rest", "rest=me/x"))),
                    ("GET", "/f/a.json", Some(("/f/:name.json", "name=a"))),
                    ("GET", "/f/a.xml", None),
                    ("GET", "/u", None),
                ],
            );
        }
    }

    #[test]
    fn a_failed_deeper_match_backtracks_to_the_next_choice() {
        let r = get(&[
            ("GET", "/u/me"),
            ("GET", "/u/:id/x"),
            ("GET", "/u/me/y"),
            ("GET", "/a/b/c"),
            ("GET", "/a/:p/d"),
            ("GET", "/a/*rest"),
        ]);
        check(
            &r,
            &[
                ("GET", "/u/me/x", Some(("/u/:id/x", "id=me"))),
                ("GET", "/u/me/y", Some(("/u/me/y", ""))),
                ("GET", "/u/me", Some(("/u/me", ""))),
                ("GET", "/a/b/d", Some(("/a/:p/d", "p=b"))),
                ("GET", "/a/b/e", Some(("/a/*rest", "rest=b/e"))),
                ("GET", "/a/b/c", Some(("/a/b/c", ""))),
            ],
        );
    }

    #[test]
    fn backtracking_considers_the_request_method() {
        let r = get(&[("GET", "/u/me"), ("POST", "/u/:id")]);
        check(
            &r,
            &[
                ("POST", "/u/me", Some(("/u/:id", "id=me"))),
                ("GET", "/u/me", Some(("/u/me", ""))),
            ],
        );
    }

    #[test]
    fn optional_groups_expand_into_alternatives() {
        let r = get(&[
            ("GET", "/users{/:id}"),
            ("GET", "/a{/b}{/c}"),
            ("GET", "/x{/:a{/:b}}"),
            ("GET", "/files{/*path}"),
            ("GET", "/book{s}"),
        ]);
        check(
            &r,
            &[
                ("GET", "/users", Some(("/users{/:id}", ""))),
                ("GET", "/users/5", Some(("/users{/:id}", "id=5"))),
                ("GET", "/users/5/6", None),
                ("GET", "/a", Some(("/a{/b}{/c}", ""))),
                ("GET", "/a/b", Some(("/a{/b}{/c}", ""))),
                ("GET", "/a/c", Some(("/a{/b}{/c}", ""))),
                ("GET", "/a/b/c", Some(("/a{/b}{/c}", ""))),
                ("GET", "/a/c/b", None),
                ("GET", "/x", Some(("/x{/:a{/:b}}", ""))),
                ("GET", "/x/1", Some(("/x{/:a{/:b}}", "a=1"))),
                ("GET", "/x/1/2", Some(("/x{/:a{/:b}}", "a=1,b=2"))),
                ("GET", "/files", Some(("/files{/*path}", ""))),
                ("GET", "/files/a/b", Some(("/files{/*path}", "path=a/b"))),
                ("GET", "/book", Some(("/book{s}", ""))),
                ("GET", "/books", Some(("/book{s}", ""))),
            ],
        );
    }

    #[test]
    fn a_wildcard_gives_the_joined_rest_of_the_path() {
        let r = get(&[("GET", "/files/*path")]);
        check(
            &r,
            &[
                (
                    "GET",
                    "/files/a/b/c.txt",
                    Some(("/files/*path", "path=a/b/c.txt")),
                ),
                ("GET", "/files/x", Some(("/files/*path", "path=x"))),
                (
                    "GET",
                    "/files/a%20b/c",
                    Some(("/files/*path", "path=a b/c")),
                ),
                ("GET", "/files/a/", Some(("/files/*path", "path=a"))),
                ("GET", "/files/", None),
                ("GET", "/files", None),
            ],
        );
    }

    #[test]
    fn params_are_percent_decoded_when_read() {
        let r = get(&[("GET", "/u/:id"), ("GET", "/u/:id/x")]);
        check(
            &r,
            &[
                ("GET", "/u/a%20b", Some(("/u/:id", "id=a b"))),
                ("GET", "/u/a%2Fb", Some(("/u/:id", "id=a/b"))),
                ("GET", "/u/a%2fb/x", Some(("/u/:id/x", "id=a/b"))),
                ("GET", "/u/caf%C3%A9", Some(("/u/:id", "id=café"))),
                ("GET", "/u/a+b", Some(("/u/:id", "id=a+b"))),
            ],
        );
        match r.lookup("GET", "/u/a%20b") {
            Match::Found { params, .. } => {
                assert_eq!(params.get_raw("id"), Some("a%20b"));
                assert_eq!(params.get("id").as_deref(), Some("a b"));
                assert_eq!(params.get("nope"), None);
                assert_eq!(params.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_param_that_does_not_decode_is_a_bad_param() {
        let r = get(&[("GET", "/u/:id"), ("GET", "/f/*rest")]);
        for path in ["/u/%zz", "/u/%FF", "/u/a%", "/u/%C3"] {
            assert!(
                matches!(r.lookup("GET", path), Match::BadParam { name: "id" }),
                "{path}"
            );
        }
        assert!(matches!(
            r.lookup("GET", "/f/a/%"),
            Match::BadParam { name: "rest" }
        ));
    }

    #[test]
    fn one_trailing_slash_is_ignored_unless_strict() {
        let routes = [("GET", "/a"), ("GET", "/b/"), ("GET", "/")];
        let lax = get(&routes);
        check(
            &lax,
            &[
                ("GET", "/a", Some(("/a", ""))),
                ("GET", "/a/", Some(("/a", ""))),
                ("GET", "/a//", None),
                ("GET", "/b", Some(("/b/", ""))),
                ("GET", "/b/", Some(("/b/", ""))),
                ("GET", "/", Some(("/", ""))),
                ("GET", "", Some(("/", ""))),
                ("GET", "//", Some(("/", ""))),
            ],
        );
        let strict = build(
            RouterOptions {
                strict_trailing_slash: true,
                ..RouterOptions::default()
            },
            &routes,
        );
        check(
            &strict,
            &[
                ("GET", "/a", Some(("/a", ""))),
                ("GET", "/a/", None),
                ("GET", "/b", None),
                ("GET", "/b/", Some(("/b/", ""))),
                ("GET", "", Some(("/", ""))),
                ("GET", "//", None),
            ],
        );
    }

    #[test]
    fn case_insensitivity_applies_to_static_text_only() {
        let routes = [("GET", "/About/:Name"), ("GET", "/f/:n.JSON")];
        let cs = get(&routes);
        check(
            &cs,
            &[
                ("GET", "/About/Bob", Some(("/About/:Name", "Name=Bob"))),
                ("GET", "/about/Bob", None),
                ("GET", "/f/x.json", None),
            ],
        );
        let ci = build(
            RouterOptions {
                case_sensitive: false,
                ..RouterOptions::default()
            },
            &routes,
        );
        check(
            &ci,
            &[
                ("GET", "/about/Bob", Some(("/About/:Name", "Name=Bob"))),
                ("GET", "/ABOUT/bOB", Some(("/About/:Name", "Name=bOB"))),
                ("GET", "/F/X.json", Some(("/f/:n.JSON", "n=X"))),
            ],
        );
        let mut ci2: R = Router::with_options(RouterOptions {
            case_sensitive: false,
            ..RouterOptions::default()
        });
        ci2.insert("GET", "/A", "/A").unwrap();
        assert_eq!(
            ci2.insert("GET", "/a", "/a"),
            Err(RouteError::DuplicateRoute {
                method: "GET".into()
            })
        );
    }

    #[test]
    fn method_not_allowed_lists_methods_of_every_route_matching_the_path() {
        let r = get(&[
            ("GET", "/x"),
            ("POST", "/x"),
            ("DELETE", "/y"),
            ("GET", "/u/me"),
            ("PUT", "/u/:id"),
            ("DELETE", "/u/*rest"),
        ]);
        let cases: &[(&str, &str, &[&str])] = &[
            ("PUT", "/x", &["GET", "HEAD", "POST"]),
            ("OPTIONS", "/x", &["GET", "HEAD", "POST"]),
            ("GET", "/y", &["DELETE"]),
            ("POST", "/u/me", &["DELETE", "GET", "HEAD", "PUT"]),
            ("POST", "/u/7", &["DELETE", "PUT"]),
        ];
        for (m, p, want) in cases {
            match r.lookup(m, p) {
                Match::MethodNotAllowed { allowed } => assert_eq!(allowed, *want, "{m} {p}"),
                other => panic!("{m} {p}: {other:?}"),
            }
            assert_eq!(r.allowed_methods(p), *want, "{p}");
        }
        assert!(matches!(r.lookup("GET", "/z"), Match::NotFound));
        assert!(r.allowed_methods("/z").is_empty());
    }

    #[test]
    fn head_falls_back_to_get_and_exact_methods_win_over_star() {
        let r = get(&[
            ("GET", "/x"),
            ("HEAD", "/h"),
            ("GET", "/h"),
            ("*", "/s"),
            ("GET", "/s"),
            ("*", "/any"),
        ]);
        check(
            &r,
            &[
                ("HEAD", "/x", Some(("/x", ""))),
                ("HEAD", "/h", Some(("/h", ""))),
                ("GET", "/s", Some(("/s", ""))),
                ("HEAD", "/s", Some(("/s", ""))),
                ("POST", "/s", Some(("/s", ""))),
                ("BREW", "/any", Some(("/any", ""))),
                ("get", "/x", None),
            ],
        );
        // Values tell apart which route answered.
        let mut r: Router<u8> = Router::new();
        r.insert("get", "/s", 1).unwrap();
        r.insert("*", "/s", 2).unwrap();
        r.insert("HEAD", "/t", 3).unwrap();
        r.insert("*", "/t", 4).unwrap();
        let v = |m: &str, p: &str| match r.lookup(m, p) {
            Match::Found { value, .. } => *value,
            _ => 0,
        };
        assert_eq!((v("GET", "/s"), v("HEAD", "/s"), v("PUT", "/s")), (1, 1, 2));
        assert_eq!((v("HEAD", "/t"), v("GET", "/t")), (3, 4));
        assert_eq!(r.allowed_methods("/s"), ["*", "GET", "HEAD"]);
    }

    #[test]
    fn bad_patterns_are_rejected_with_the_matching_error() {
        use RouteError as E;
        let cases: &[(&str, &str, E)] = &[
            ("GET", "", E::Empty),
            ("GET", "a/b", E::MissingLeadingSlash),
            ("GET", "{/a}", E::MissingLeadingSlash),
            ("GET", "*", E::BareWildcard { at: 0 }),
            ("GET", "*rest", E::MissingLeadingSlash),
            ("GET", "/*", E::BareWildcard { at: 1 }),
            ("GET", "/a/*/b", E::BareWildcard { at: 3 }),
            ("GET", "/a/:", E::UnnamedParam { at: 3 }),
            ("GET", "/a/:/b", E::UnnamedParam { at: 3 }),
            ("GET", "/:1", E::UnnamedParam { at: 1 }),
            ("GET", "/:id/:id", E::DuplicateParam("id".into())),
            ("GET", "/:id/*id", E::DuplicateParam("id".into())),
            ("GET", "/*rest/a", E::WildcardNotLast("rest".into())),
            ("GET", "/*rest.txt", E::WildcardNotLast("rest".into())),
            ("GET", "/x*rest", E::WildcardNotWholeSegment("rest".into())),
            ("GET", "/:a:b", E::AdjacentParams("a".into(), "b".into())),
            ("GET", "/a{/b", E::UnbalancedBraces { at: 2 }),
            ("GET", "/a}/b", E::UnbalancedBraces { at: 2 }),
            ("GET", "/a/(x)", E::InvalidChar { ch: '(', at: 3 }),
            ("GET", "/a?", E::InvalidChar { ch: '?', at: 2 }),
            ("GET", "/a+", E::InvalidChar { ch: '+', at: 2 }),
            ("GET", "/a\\", E::InvalidChar { ch: '\\', at: 2 }),
            ("GET", "/a\n", E::InvalidChar { ch: '\n', at: 2 }),
            ("GET", "/{{{{{{{{{a}}}}}}}}}", E::TooManyGroups),
            ("GET", "/{a}{b}{c}{d}{e}{f}{g}", E::TooManyGroups),
            ("", "/a", E::InvalidMethod("".into())),
            ("G T", "/a", E::InvalidMethod("G T".into())),
            (
                "GET",
                "/c/:name",
                E::ConflictingParamName {
                    existing: "id".into(),
                    new: "name".into(),
                },
            ),
            (
                "GET",
                "/c/:id/:x.:y",
                E::ConflictingParamName {
                    existing: "a".into(),
                    new: "x".into(),
                },
            ),
            (
                "POST",
                "/w/*other",
                E::ConflictingParamName {
                    existing: "rest".into(),
                    new: "other".into(),
                },
            ),
            (
                "GET",
                "/p{/:x}/:y",
                E::ConflictingParamName {
                    existing: "y".into(),
                    new: "x".into(),
                },
            ),
            (
                "GET",
                "/dup",
                E::DuplicateRoute {
                    method: "GET".into(),
                },
            ),
            (
                "get",
                "/dup/",
                E::DuplicateRoute {
                    method: "GET".into(),
                },
            ),
            ("*", "/star", E::DuplicateRoute { method: "*".into() }),
            (
                "GET",
                "/c/:id",
                E::DuplicateRoute {
                    method: "GET".into(),
                },
            ),
            (
                "GET",
                "/o{/x}",
                E::DuplicateRoute {
                    method: "GET".into(),
                },
            ),
        ];
        for (m, p, want) in cases {
            let mut r = get(&[
                ("GET", "/c/:id"),
                ("GET", "/c/:id/:a.:b"),
                ("GET", "/w/*rest"),
                ("GET", "/dup"),
                ("*", "/star"),
                ("GET", "/o/x"),
            ]);
            assert_eq!(r.insert(m, p, "new").as_ref(), Err(want), "{m} {p}");
            // A failed insert changes nothing.
            assert_eq!(r.len(), 6);
            assert!(matches!(r.lookup("GET", "/p/1"), Match::NotFound));
            assert!(matches!(r.lookup("GET", "/o"), Match::NotFound));
            assert!(!want.to_string().is_empty());
        }
    }

    #[test]
    fn escaped_characters_are_literal() {
        let r = get(&[("GET", "/a\\:b"), ("GET", "/q\\?"), ("GET", "/s\\*")]);
        check(
            &r,
            &[
                ("GET", "/a:b", Some(("/a\\:b", ""))),
                ("GET", "/q?", Some(("/q\\?", ""))),
                ("GET", "/s*", Some(("/s\\*", ""))),
            ],
        );
    }

    #[test]
    fn mixed_segments_split_at_the_last_separator() {
        let r = get(&[
            ("GET", "/f/:file.:ext"),
            ("GET", "/r/:from-:to"),
            ("GET", "/i/img-:id.png"),
            ("GET", "/i/:name"),
            ("GET", "/i/logo.png"),
        ]);
        check(
            &r,
            &[
                ("GET", "/f/a.b.c", Some(("/f/:file.:ext", "file=a.b,ext=c"))),
                ("GET", "/f/a.txt", Some(("/f/:file.:ext", "file=a,ext=txt"))),
                ("GET", "/f/.txt", None),
                ("GET", "/f/a.", None),
                ("GET", "/r/1-2", Some(("/r/:from-:to", "from=1,to=2"))),
                ("GET", "/i/img-7.png", Some(("/i/img-:id.png", "id=7"))),
                ("GET", "/i/logo.png", Some(("/i/logo.png", ""))),
                ("GET", "/i/img-.png", Some(("/i/:name", "name=img-.png"))),
            ],
        );
    }

    #[test]
    fn params_longer_than_the_limit_do_not_match() {
        let r = get(&[("GET", "/u/:id"), ("GET", "/w/*rest")]);
        let ok = format!("/u/{}", "a".repeat(100));
        let long = format!("/u/{}", "a".repeat(101));
        assert!(hit(&r, "GET", &ok).is_some());
        assert!(hit(&r, "GET", &long).is_none());
        let wide = format!("/w/{}", "a".repeat(1000));
        assert!(hit(&r, "GET", &wide).is_some());
    }

    #[test]
    fn more_than_four_params_spill_to_the_heap() {
        let r = get(&[("GET", "/:a/:b/:c/:d/:e/:f")]);
        check(
            &r,
            &[(
                "GET",
                "/1/2/3/4/5/6",
                Some(("/:a/:b/:c/:d/:e/:f", "a=1,b=2,c=3,d=4,e=5,f=6")),
            )],
        );
    }

    #[test]
    fn paths_not_starting_with_a_slash_are_not_found() {
        let r = get(&[("*", "/*rest"), ("GET", "/")]);
        for p in ["*", "http://x/a", "a"] {
            assert!(matches!(r.lookup("GET", p), Match::NotFound), "{p}");
        }
    }

    #[test]
    fn a_hundred_route_table_finds_each_route() {
        let mut r: Router<usize> = Router::new();
        let mut paths = Vec::new();
        for i in 0..100 {
            let (pattern, path) = match i % 4 {
                0 => (format!("/api/r{i}"), format!("/api/r{i}")),
                1 => (format!("/api/r{i}/:id"), format!("/api/r{i}/x{i}")),
                2 => (
                    format!("/api/r{i}/:id/sub/:sid"),
                    format!("/api/r{i}/1/sub/{i}"),
                ),
                _ => (format!("/static/r{i}/*path"), format!("/static/r{i}/a/b")),
            };
            r.insert("GET", &pattern, i).unwrap();
            paths.push(path);
        }
        for (i, p) in paths.iter().enumerate() {
            match r.lookup("GET", p) {
                Match::Found { value, .. } => assert_eq!(*value, i, "{p}"),
                other => panic!("{p}: {other:?}"),
            }
        }
        assert!(matches!(r.lookup("GET", "/api/nope"), Match::NotFound));
        assert!(matches!(
            r.lookup("POST", "/api/r0"),
            Match::MethodNotAllowed { .. }
        ));
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
            xs[(self.next() % xs.len() as u64) as usize]
        }
    }

    #[test]
    fn random_paths_and_patterns_never_panic() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut r: Router<usize> = Router::new();
        let pieces = [
            "/", "/", "a", "b", ":x", ":y", "*w", "{", "}", ".", "-", "%", "\\", "é", "?", ":", "*",
        ];
        let mut ok = 0;
        for i in 0..3000 {
            let mut p = String::from("/");
            for _ in 0..rng.next() % 8 {
                p.push_str(rng.pick(&pieces));
            }
            let m = rng.pick(&["GET", "POST", "*", "HEAD"]);
            if r.insert(m, &p, i).is_ok() {
                ok += 1;
            }
        }
        assert!(ok > 20, "only {ok} random patterns accepted");
        let bytes = b"//ab.-%2Fxz\xC3\xA9\xFF%%3A:*";
        for _ in 0..20_000 {
            let len = (rng.next() % 40) as usize;
            let raw: Vec<u8> = (0..len)
                .map(|_| bytes[(rng.next() % bytes.len() as u64) as usize])
                .collect();
            let path = String::from_utf8_lossy(&raw);
            for m in ["GET", "HEAD", "DELETE"] {
                if let Match::Found { params, .. } = r.lookup(m, &path) {
                    for (_, v) in params.iter() {
                        let _ = v.len();
                    }
                }
            }
            let _ = r.allowed_methods(&path);
        }
        let long = "/a".repeat(50_000);
        let _ = r.lookup("GET", &long);
        let slashes = "/".repeat(100_000);
        let _ = r.lookup("GET", &slashes);
    }

    #[test]
    fn mixed_matching_is_bounded_on_crafted_paths() {
        let r = get(&[("GET", "/m/:a-:b-:c-:d.x")]);
        let path = format!("/m/{}", "-".repeat(99));
        assert!(hit(&r, "GET", &path).is_none());
    }
    #[test]
    fn static_children_match_exactly_in_both_scan_and_search_modes() {
        // Keys sharing their first 7 bytes and length differ only after the
        // packed head; 40 siblings exceed LINEAR_STATICS (binary search).
        let names: Vec<String> = (0..40).map(|i| format!("segment{i:02}")).collect();
        for (count, ci) in [(5, false), (5, true), (40, false), (40, true)] {
            let mut r: Router<usize> = Router::with_options(RouterOptions {
                case_sensitive: !ci,
                ..RouterOptions::default()
            });
            for (i, name) in names.iter().take(count).enumerate() {
                r.insert("GET", &format!("/x/{name}"), i).unwrap();
            }
            r.insert("GET", "/x/short", 100).unwrap();
            for (i, name) in names.iter().take(count).enumerate() {
                let path = if ci {
                    format!("/X/{}", name.to_uppercase())
                } else {
                    format!("/x/{name}")
                };
                let got = match r.lookup("GET", &path) {
                    Match::Found { value, .. } => Some(*value),
                    _ => None,
                };
                // Every key is found under its own spelling (upper-cased when insensitive).
                assert_eq!(got, Some(i), "{path} ci={ci}");
            }
            let short = if ci { "/x/SHORT" } else { "/x/short" };
            assert!(matches!(
                r.lookup("GET", short),
                Match::Found { value: 100, .. }
            ));
            assert!(matches!(r.lookup("GET", "/x/segment9"), Match::NotFound));
            assert!(matches!(r.lookup("GET", "/x/segment000"), Match::NotFound));
            assert!(matches!(r.lookup("GET", "/x/shor"), Match::NotFound));
            if !ci {
                assert!(matches!(r.lookup("GET", "/x/SHORT"), Match::NotFound));
                assert!(matches!(r.lookup("GET", "/x/Segment01"), Match::NotFound));
            }
        }
    }
}
