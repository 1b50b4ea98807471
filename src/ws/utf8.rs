//! Incremental, fail-fast UTF-8 validation for fragmented text messages.
//!
//! The validator rejects input as soon as the bytes seen so far can no longer
//! be a prefix of valid UTF-8 (e.g. `F4 90` fails at the second byte because
//! it would encode a code point above U+10FFFF), even when a multi-byte
//! sequence is split across `feed` calls (fragment or read boundaries).

/// Error returned when the input is not (a prefix of) valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

impl std::fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl std::error::Error for Utf8Error {}

/// Streaming UTF-8 validator.
///
/// Feed bytes in any chunking with [`Utf8Validator::feed`]; call
/// [`Utf8Validator::finish`] at the end of the message. After an error the
/// validator stays failed until [`Utf8Validator::reset`].
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// Continuation bytes still needed by the current sequence (0..=3).
    need: u8,
    /// Inclusive range allowed for the next continuation byte.
    lo: u8,
    hi: u8,
    failed: bool,
}

impl Utf8Validator {
    /// Creates a validator positioned at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resets to the initial state (start of a new message, no error).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Returns `true` if the bytes fed so far end on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.need == 0 && !self.failed
    }

    /// Validates the next chunk of the message.
    ///
    /// Fails as soon as an invalid prefix is seen; an incomplete trailing
    /// sequence is fine (it may be completed by the next chunk).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Utf8Error> {
        if self.failed {
            return Err(Utf8Error);
        }
        let mut rest = bytes;
        // Finish a sequence left open by the previous chunk.
        while self.need > 0 {
            match rest.split_first() {
                None => return Ok(()),
                Some((&b, tail)) => {
                    self.step(b)?;
                    rest = tail;
                }
            }
        }
        // Bulk-validate with the (fast) standard library routine.
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                // Truncated trailing sequence: run it through the state
                // machine so the next chunk can continue it.
                let tail = rest.get(e.valid_up_to()..).unwrap_or(&[]);
                for &b in tail {
                    self.step(b)?;
                }
                Ok(())
            }
            Err(_) => {
                self.failed = true;
                Err(Utf8Error)
            }
        }
    }

    /// Ends the message: fails if the last sequence is incomplete (or an
    /// earlier error occurred). The validator is reset either way.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let ok = self.is_complete();
        self.reset();
        if ok {
            Ok(())
        } else {
            Err(Utf8Error)
        }
    }

    fn step(&mut self, b: u8) -> Result<(), Utf8Error> {
        if self.need > 0 {
            if b < self.lo || b > self.hi {
                self.failed = true;
                return Err(Utf8Error);
            }
            self.need -= 1;
            self.lo = 0x80;
            self.hi = 0xBF;
            return Ok(());
        }
        let (need, lo, hi) = match b {
            0x00..=0x7F => (0, 0x80, 0xBF),
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),                      // no overlongs
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF), //
            0xED => (2, 0x80, 0x9F),                      // no surrogates
            0xF0 => (3, 0x90, 0xBF),                      // no overlongs
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F), // <= U+10FFFF
            _ => {
                // 0x80..=0xC1 (stray continuation / overlong lead), 0xF5..
                self.failed = true;
                return Err(Utf8Error);
            }
        };
        self.need = need;
        self.lo = lo;
        self.hi = hi;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> bool {
        let mut v = Utf8Validator::new();
        v.feed(bytes).is_ok() && v.finish().is_ok()
    }

    /// Feeds one byte at a time; returns the index of the first failing
    /// byte (or `len` if only `finish` failed), or `None` if valid.
    fn first_failure_bytewise(bytes: &[u8]) -> Option<usize> {
        let mut v = Utf8Validator::new();
        for (i, b) in bytes.iter().enumerate() {
            if v.feed(std::slice::from_ref(b)).is_err() {
                return Some(i);
            }
        }
        v.finish().err().map(|_| bytes.len())
    }

    fn cases() -> Vec<(&'static [u8], bool)> {
        vec![
            (b"", true),
            (b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", true),
            ("κόσμε".as_bytes(), true),
            (b"\x00", true),
            (b"\x7f", true),
            (b"\xc2\x80", true),
            (b"\xdf\xbf", true),
            (b"\xe0\xa0\x80", true),
            (b"\xef\xbf\xbf", true), // U+FFFF (noncharacter, but valid)
            (b"\xf0\x90\x80\x80", true),
            (b"\xf4\x8f\xbf\xbf", true), // U+10FFFF
            (b"\xed\x9f\xbf", true),     // U+D7FF
            (b"\xee\x80\x80", true),     // U+E000
            // > U+10FFFF
            (b"\xf4\x90\x80\x80", false),
            (b"\xf7\xbf\xbf\xbf", false),
            (b"\xf8\x88\x80\x80\x80", false),
            (b"\xfc\x84\x80\x80\x80\x80", false),
            (b"\xfe", false),
            (b"\xff", false),
            // lone continuation bytes
            (b"\x80", false),
            (b"\xbf", false),
            (b"\x80\xbf\x80", false),
            // lonely start characters
            (b"\xc0 ", false),
            (b"\xe0 ", false),
            (b"\xf0 ", false),
            // truncated sequences
            (b"\xc2", false),
            (b"\xe0\xa0", false),
            (b"\xf0\x90\x80", false),
            (b"\xdf", false),
            (b"\xef\xbf", false),
            (b"\xf4\x8f\xbf", false),
            (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64", false),
            // overlongs
            (b"\xc0\xaf", false),
            (b"\xe0\x80\xaf", false),
            (b"\xf0\x80\x80\xaf", false),
            (b"\xc1\xbf", false),
            (b"\xe0\x9f\xbf", false),
            (b"\xf0\x8f\xbf\xbf", false),
            (b"\xc0\x80", false),
            // surrogates
            (b"\xed\xa0\x80", false),
            (b"\xed\xad\xbf", false),
            (b"\xed\xae\x80", false),
            (b"\xed\xaf\xbf", false),
            (b"\xed\xb0\x80", false),
            (b"\xed\xbf\xbf", false),
            (b"\xed\xa0\x80\xed\xb0\x80", false),
            (b"\xed\xaf\xbf\xed\xbf\xbf", false),
        ]
    }

    #[test]
    fn autobahn_style_cases_match_std_validation() {
        for (bytes, valid) in cases() {
            assert_eq!(whole(bytes), valid, "{bytes:02x?}");
            assert_eq!(std::str::from_utf8(bytes).is_ok(), valid, "{bytes:02x?}");
        }
    }

    #[test]
    fn splitting_at_every_byte_gives_the_same_verdict() {
        for (bytes, valid) in cases() {
            for cut in 0..=bytes.len() {
                let mut v = Utf8Validator::new();
                let ok = v.feed(&bytes[..cut]).is_ok()
                    && v.feed(&bytes[cut..]).is_ok()
                    && v.finish().is_ok();
                assert_eq!(ok, valid, "{bytes:02x?} cut at {cut}");
            }
            assert_eq!(first_failure_bytewise(bytes).is_none(), valid);
        }
    }

    #[test]
    fn f4_90_fails_immediately_at_the_second_byte() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xf4").is_ok());
        assert!(v.feed(b"\x90").is_err());
        assert_eq!(first_failure_bytewise(b"\xf4\x90\x80\x80"), Some(1));
        assert_eq!(first_failure_bytewise(b"ab\xed\xa0\x80"), Some(3));
        assert_eq!(first_failure_bytewise(b"\xe0\x80\xaf"), Some(1));
        assert_eq!(first_failure_bytewise(b"\xc0\xaf"), Some(0));
    }

    #[test]
    fn failure_is_sticky_until_reset() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xff").is_err());
        assert!(v.feed(b"a").is_err());
        v.reset();
        assert!(v.feed(b"a").is_ok());
        assert!(v.finish().is_ok());
    }

    #[test]
    fn truncated_sequence_fails_only_at_finish() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"abc\xe2\x82").is_ok());
        assert!(!v.is_complete());
        assert!(v.finish().is_err());
        // finish resets
        assert!(v.feed(b"ok").is_ok());
        assert!(v.finish().is_ok());
    }

    #[test]
    fn agrees_with_std_on_pseudo_random_bytes_split_anywhere() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let len = (next() % 12) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    // bias towards interesting bytes
                    if r % 3 == 0 {
                        (r >> 8) as u8 & 0x7f
                    } else {
                        0x80 | ((r >> 8) as u8)
                    }
                })
                .collect();
            let expect = std::str::from_utf8(&bytes).is_ok();
            let cut = if len == 0 {
                0
            } else {
                (next() as usize) % (len + 1)
            };
            let mut v = Utf8Validator::new();
            let ok = v.feed(&bytes[..cut]).is_ok()
                && v.feed(&bytes[cut..]).is_ok()
                && v.finish().is_ok();
            assert_eq!(ok, expect, "{bytes:02x?} cut {cut}");
            assert_eq!(first_failure_bytewise(&bytes).is_none(), expect);
        }
    }
}
