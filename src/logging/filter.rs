//! Which records to keep: `LOG_LEVEL` (pino's level names) or `RUST_LOG` (env_logger's
//! directives, the common subset: `level` and `target=level`, comma-separated).

use log::LevelFilter;

/// A level for every target prefix, plus a default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    /// `(target prefix, level)`; the longest matching prefix wins.
    targets: Vec<(String, LevelFilter)>,
}

/// pino's level names (`trace`, `debug`, `info`, `warn`, `error`, `fatal`, `silent`) and the
/// `log` crate's (`off`); case-insensitive. `fatal` keeps nothing: the `log` crate has no level
/// above `error`.
pub fn parse_level(name: &str) -> Option<LevelFilter> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::Trace,
        "debug" => LevelFilter::Debug,
        "info" => LevelFilter::Info,
        "warn" | "warning" => LevelFilter::Warn,
        "error" => LevelFilter::Error,
        "fatal" | "silent" | "off" => LevelFilter::Off,
        _ => return None,
    })
}

impl Filter {
    /// Everything at `level` and above.
    pub fn level(level: LevelFilter) -> Filter {
        Filter {
            default: level,
            targets: Vec::new(),
        }
    }

    /// `LOG_LEVEL` if set, else `RUST_LOG`, else `info`.
    ///
    /// # Errors
    /// A value that names no level (the message says which variable).
    pub fn from_env() -> Result<Filter, String> {
        if let Ok(v) = std::env::var("LOG_LEVEL") {
            return parse_level(&v).map(Filter::level).ok_or_else(|| {
                format!(
                    "LOG_LEVEL={v:?}: expected trace, debug, info, warn, error, fatal or silent"
                )
            });
        }
        match std::env::var("RUST_LOG") {
            Ok(v) => Filter::parse_directives(&v),
            Err(_) => Ok(Filter::level(LevelFilter::Info)),
        }
    }

    /// `RUST_LOG`-style directives: `info`, `oneloop::access=warn,debug`.
    ///
    /// # Errors
    /// A directive whose level is not a level name.
    pub fn parse_directives(spec: &str) -> Result<Filter, String> {
        let mut filter = Filter::level(LevelFilter::Error);
        for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match d.split_once('=') {
                Some((target, level)) => {
                    let level = parse_level(level)
                        .ok_or_else(|| format!("RUST_LOG: bad level in {d:?}"))?;
                    filter.targets.push((target.trim().to_string(), level));
                }
                None => match parse_level(d) {
                    Some(level) => filter.default = level,
                    // env_logger reads a bare word as a target enabled at every level.
                    None => filter.targets.push((d.to_string(), LevelFilter::Trace)),
                },
            }
        }
        Ok(filter)
    }

    /// The level that applies to `target`.
    pub fn for_target(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .filter(|(prefix, _)| {
                target == prefix
                    || (target.starts_with(prefix.as_str())
                        && target[prefix.len()..].starts_with("::"))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.default, |(_, level)| *level)
    }

    /// The most verbose level any target gets (for `log::set_max_level`).
    pub fn max(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, std::cmp::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_target_prefix_wins_and_bare_level_is_the_default() {
        let f = Filter::parse_directives("warn,oneloop=info,oneloop::access=off").unwrap();
        assert_eq!(f.for_target("oneloop::access"), LevelFilter::Off);
        assert_eq!(f.for_target("oneloop::http"), LevelFilter::Info);
        assert_eq!(f.for_target("oneloopx"), LevelFilter::Warn);
        assert_eq!(f.max(), LevelFilter::Info);
    }

    #[test]
    fn pino_names_map_to_log_levels() {
        assert_eq!(parse_level("WARN"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("silent"), Some(LevelFilter::Off));
        assert_eq!(parse_level("loud"), None);
    }
}
