//! Level normalisation: every source's spelling becomes TRACE DEBUG INFO WARN ERROR FATAL.

/// Normalises a level name; unknown levels are kept as given (trimmed).
pub fn normalize(level: &str) -> String {
    let t = level.trim();
    let upper = t.to_ascii_uppercase();
    let canon = match upper.as_str() {
        "TRACE" | "T" | "FINEST" | "FINER" => "TRACE",
        "DEBUG" | "D" | "DBG" | "FINE" | "VERBOSE" | "V" => "DEBUG",
        "INFO" | "I" | "INF" | "INFORMATION" | "NOTICE" | "LOG" => "INFO",
        "WARN" | "W" | "WARNING" | "WRN" => "WARN",
        "ERROR" | "E" | "ERR" | "SEVERE" | "ALERT" => "ERROR",
        "FATAL" | "F" | "CRITICAL" | "CRIT" | "EMERG" | "EMERGENCY" | "PANIC" => "FATAL",
        _ => return t.to_string(),
    };
    canon.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_normalise() {
        for (given, want) in [
            ("warning", "WARN"),
            ("E", "ERROR"),
            ("notice", "INFO"),
            ("crit", "FATAL"),
            ("trace", "TRACE"),
            (" debug ", "DEBUG"),
            ("audit", "audit"),
        ] {
            assert_eq!(normalize(given), want, "{given}");
        }
    }
}
