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

/// A level field's value as a level: journald's and syslog's numeric `PRIORITY` (0 emerg … 7
/// debug) by its severity, any other field's by [`normalize`].
pub fn normalize_field(key: &str, value: &str) -> String {
    if key.eq_ignore_ascii_case("priority") {
        let level = match value.trim() {
            "0" | "1" | "2" => Some("FATAL"),
            "3" => Some("ERROR"),
            "4" => Some("WARN"),
            "5" | "6" => Some("INFO"),
            "7" => Some("DEBUG"),
            _ => None,
        };
        if let Some(l) = level {
            return l.to_string();
        }
    }
    normalize(value)
}

/// Whether `level` is a level's name (any spelling [`normalize`] knows), not some other word
/// that landed where a level stands.
pub fn is_level(level: &str) -> bool {
    // Every spelling `normalize` knows, compared without allocating (this runs per line).
    const NAMES: [&str; 32] = [
        "TRACE",
        "T",
        "FINEST",
        "FINER",
        "DEBUG",
        "D",
        "DBG",
        "FINE",
        "VERBOSE",
        "V",
        "INFO",
        "I",
        "INF",
        "INFORMATION",
        "NOTICE",
        "LOG",
        "WARN",
        "W",
        "WARNING",
        "WRN",
        "ERROR",
        "E",
        "ERR",
        "SEVERE",
        "ALERT",
        "FATAL",
        "F",
        "CRITICAL",
        "CRIT",
        "EMERG",
        "EMERGENCY",
        "PANIC",
    ];
    let t = level.trim();
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(t))
}

/// The level of a line that starts with a level in capitals and a colon, as the second line of
/// java.util.logging's two-line records does (`SEVERE: request failed`, `CONFIG: …`).
pub fn level_label(line: &str) -> Option<&'static str> {
    let (word, _) = line.split_once(": ")?;
    if !word.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    match word {
        "CONFIG" => Some("DEBUG"),
        w => level_word(w),
    }
}

/// Canonical level of a word that names one unmistakably (`ERROR`, `warning`, `crit`…); single
/// letters and `log` are too common in text to count.
fn level_word(word: &str) -> Option<&'static str> {
    if word.len() < 3 || word.len() > 11 {
        return None;
    }
    let canon = match word.to_ascii_uppercase().as_str() {
        "TRACE" | "FINEST" | "FINER" => "TRACE",
        "DEBUG" | "DBG" | "FINE" | "VERBOSE" => "DEBUG",
        "INFO" | "INF" | "NOTICE" | "INFORMATION" => "INFO",
        "WARN" | "WARNING" | "WRN" => "WARN",
        "ERROR" | "ERR" | "SEVERE" => "ERROR",
        "FATAL" | "CRITICAL" | "CRIT" | "EMERG" | "EMERGENCY" | "PANIC" => "FATAL",
        _ => return None,
    };
    Some(canon)
}

/// A level word that opens `text` (`ERROR rest`, `[warn] rest`, `<info> rest`, `E rest` not),
/// with the text after it; lower-case words count only in brackets.
pub fn leading_level(text: &str) -> Option<(&'static str, &str)> {
    let t = text.trim_start();
    let (word, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let bracketed = word.len() > 2
        && matches!(
            (word.as_bytes()[0], word.as_bytes()[word.len() - 1]),
            (b'[', b']') | (b'<', b'>') | (b'(', b')')
        );
    let bare = word.trim_matches(['[', ']', '<', '>', '(', ')', ':']);
    let canon = level_word(bare)?;
    let shouting = bare.bytes().all(|b| b.is_ascii_uppercase());
    (shouting || bracketed).then_some((canon, rest.trim_start()))
}

/// The level a free-text line names near its start: `level=warn`, `"level":"error"`, `[ERROR]`,
/// `<warn>`, or a level word in capitals (`ERROR`, `WARN`); lower-case words only when marked
/// as a level, since `error` in a sentence is not one. `None` when the line names none.
pub fn find_level(line: &str) -> Option<&'static str> {
    let head = match line.char_indices().nth(160) {
        Some((i, _)) => &line[..i],
        None => line,
    };
    let mut start = None;
    for (i, c) in head
        .char_indices()
        .chain(std::iter::once((head.len(), ' ')))
    {
        if c.is_ascii_alphabetic() {
            start.get_or_insert(i);
            continue;
        }
        let Some(s) = start.take() else { continue };
        let word = &head[s..i];
        // PostgreSQL's `LOG:` (a plain "log" in text is not a level).
        if word == "LOG" && head[i..].starts_with(':') {
            return Some("INFO");
        }
        let Some(canon) = level_word(word) else {
            continue;
        };
        let before = head[..s].trim_end_matches(['"', '\\', ' ']);
        // Apache 2.4's `[core:error]`: a bracketed module, a colon, the level.
        let module = head[i..].starts_with(']')
            && before
                .strip_suffix(':')
                .and_then(|b| b.rsplit_once('['))
                .is_some_and(|(_, m)| {
                    !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
        let marked = module
            || before.ends_with(['[', '<', '(', '|', '='])
            || before.strip_suffix(':').is_some_and(|k| {
                let key = k.trim_end_matches(['"', '\\']);
                let k = key.as_bytes();
                k.len() >= 5 && k[k.len() - 5..].eq_ignore_ascii_case(b"level")
            });
        let shouting = word.bytes().all(|b| b.is_ascii_uppercase());
        if shouting || marked {
            return Some(canon);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_levels() {
        assert_eq!(
            leading_level("ERROR card declined"),
            Some(("ERROR", "card declined"))
        );
        assert_eq!(leading_level("[warn] disk"), Some(("WARN", "disk")));
        assert_eq!(leading_level("WARNING: cpu"), Some(("WARN", "cpu")));
        assert_eq!(leading_level("error in line"), None);
        assert_eq!(leading_level("INFO"), Some(("INFO", "")));
    }

    #[test]
    fn levels_found_in_text() {
        for (line, want) in [
            ("2024-01-15 10:30:45 ERROR payment failed", Some("ERROR")),
            ("level=warn msg=\"slow\"", Some("WARN")),
            ("{\"level\":\"error\",\"msg\":\"x\"}", Some("ERROR")),
            ("[info] started", Some("INFO")),
            ("<crit> disk", Some("FATAL")),
            ("an error occurred while reading", None),
            ("E0115 10:30:45 glog style", None),
            ("Jan 15 host kernel: WARNING: CPU: 1 PID", Some("WARN")),
            ("nothing here", None),
            (
                "2026-12-06 19:18:49.207 UTC [14754] LOG:  checkpoint",
                Some("INFO"),
            ),
            ("the LOG of the day", None),
            (
                "[Sun Dec 06 19:18:49.207 2026] [core:error] [pid 7] AH00126: bad",
                Some("ERROR"),
            ),
            (
                "[Sun Dec 06 19:18:49.207 2026] [mpm_event:notice] [pid 7] resuming",
                Some("INFO"),
            ),
            ("see [docs:warning about x]", None),
        ] {
            assert_eq!(find_level(line), want, "{line}");
        }
    }

    #[test]
    fn journald_priorities() {
        assert_eq!(normalize_field("PRIORITY", "3"), "ERROR");
        assert_eq!(normalize_field("priority", "6"), "INFO");
        assert_eq!(normalize_field("level", "3"), "3");
    }

    #[test]
    fn level_labels_and_non_levels() {
        assert_eq!(level_label("SEVERE: request failed"), Some("ERROR"));
        assert_eq!(level_label("CONFIG: loaded"), Some("DEBUG"));
        assert_eq!(level_label("Caused by: x"), None);
        assert!(is_level("Info") && is_level("V") && !is_level("UTC") && !is_level("14754"));
        for name in [
            "trace", "Debug", "NOTICE", "warning", "err", "crit", "panic", " info ",
        ] {
            let canonical = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
            assert!(is_level(name) && canonical.contains(&normalize(name).as_str()));
        }
    }

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
