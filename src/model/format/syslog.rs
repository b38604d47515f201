//! Syslog as files hold it: rsyslog's traditional file format and journalctl's `short` and
//! `short-precise` (`Dec  6 19:18:49 host prog[42]: msg`), rsyslog's high-precision file format
//! and journalctl's `short-iso` (`2026-12-06T19:18:49.123456+00:00 host prog[42]: msg`), and
//! journalctl's `short-full` (`Sun 2026-12-06 19:18:49 UTC host prog[42]: msg`).
//!
//! The host is the token after the stamp and the service is the program that wrote the line
//! (the tag without its `[pid]` and colon). A tag may lack its colon, as rsyslog writes tags of
//! senders that omit it; with an ISO stamp the colon or a pid is required, so an application
//! log that starts with an ISO time is not taken for syslog.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::stamp::{self, Clock, Shape};
use super::ParsedLine;
use crate::model::level::find_level;

/// The traditional stamp exactly: no year, no comma, no AM/PM (java.util.logging's
/// `Dec 06, 2026 7:20:06 PM` is not syslog).
static TRADITIONAL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^[A-Z][a-z]{2} {1,2}\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?$").ok()
});

static AFTER_STAMP: LazyLock<Option<Regex>> = LazyLock::new(|| {
    // The tag, best first: `prog[pid]:` or `prog:`; two words and a pid (`-- root[2421]:`,
    // from login); a bare `prog[pid]` or `prog`.
    Regex::new(concat!(
        r"^\s+(?P<host>[A-Za-z0-9](?:[\w.:-]*[\w.-])?)\s+",
        r"(?:(?P<tag>[^\s\[\]:]+)(?:\[(?P<pid>\d+)\])?(?P<colon>:)",
        r"|(?P<spaced>[^\s\[\]:]+ [^\s\[\]:]+)\[(?P<spid>\d+)\]:?",
        r"|(?P<bare>[A-Za-z_][\w./()@-]*)(?:\[(?P<bpid>\d+)\])?)",
        r"(?:\s+(?P<msg>.*))?$"
    ))
    .ok()
});

/// Parses one syslog line as a file holds it.
pub(super) fn parse(line: &str, clock: &Clock) -> Option<ParsedLine> {
    let traditional_stamp = stamp::at_start(line, clock, &[Shape::Syslog]).filter(|f| {
        TRADITIONAL
            .as_ref()
            .is_some_and(|re| re.is_match(&line[..f.end]))
    });
    // Where a tag may come without its colon: the traditional form, and rsyslog's precise one
    // (a numeric offset, which application logs seldom write).
    let (found, rest, bare_tag) = match traditional_stamp {
        Some(f) => (f, &line[f.end..], true),
        None => {
            // `short-full` puts a weekday before an ISO date; rsyslog and `short-iso` do not.
            let weekday = line
                .split_once(' ')
                .filter(|(w, _)| stamp::WEEKDAYS.split('|').any(|d| d == *w));
            let (weekday, text) = match weekday {
                Some((_, rest)) => (true, rest),
                None => (false, line),
            };
            let f = stamp::at_start(text, clock, &[Shape::Iso])?;
            let stamp_text = &text[..f.end];
            // Past `YYYY-MM-DDTHH:MM:SS` and the fraction: `Z`, an offset or a zone name.
            let zoned = stamp_text
                .get(19..)
                .map(|t| {
                    t.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit())
                        .trim()
                })
                .is_some_and(|z| {
                    !z.is_empty() && !["AM", "PM"].contains(&z.to_ascii_uppercase().as_str())
                });
            if !(weekday || stamp_text.as_bytes().get(10) == Some(&b'T')) || !zoned {
                return None;
            }
            let offset = stamp_text.len() > 6
                && matches!(stamp_text.as_bytes()[stamp_text.len() - 6], b'+' | b'-');
            (f, &text[f.end..], offset)
        }
    };
    let caps = AFTER_STAMP.as_ref()?.captures(rest)?;
    let host = caps.name("host")?.as_str();
    if !plausible_host(host) {
        return None;
    }
    let first = |names: [&str; 3]| names.iter().find_map(|n| caps.name(n)).map(|m| m.as_str());
    let tag = first(["tag", "spaced", "bare"])?;
    let pid = first(["pid", "spid", "bpid"]);
    let colon = caps.name("colon").is_some();
    // A level in capitals is no program (`Jan 15 10:30:45 web-1 ERROR x`).
    let level_tag = crate::model::level::leading_level(tag).is_some();
    if level_tag || (!bare_tag && pid.is_none() && !colon) {
        return None;
    }
    let msg = caps.name("msg").map_or("", |m| m.as_str());
    let mut attrs = Map::new();
    if let Some(pid) = pid {
        attrs.insert("pid".into(), Value::from(pid));
    }
    Some(ParsedLine {
        ts: found.ts,
        level: find_level(msg).map(str::to_string),
        host: Some(host.to_string()),
        service: Some(tag.to_string()),
        msg: msg.to_string(),
        attrs,
        ..ParsedLine::default()
    })
}

/// Whether a token reads as a host name, address or node number: not a level word, a zone or
/// punctuation.
pub(super) fn plausible_host(host: &str) -> bool {
    host.len() <= 253
        && host.bytes().any(|b| b.is_ascii_alphanumeric())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
        && crate::model::level::leading_level(&host.to_ascii_uppercase()).is_none()
        && !["UTC", "GMT"].contains(&host)
        || host.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000;

    fn one(line: &str) -> Option<(String, String, String)> {
        let p = parse(line, &Clock::new(NOW))?;
        Some((p.host?, p.service?, p.msg))
    }

    #[test]
    fn file_forms_of_rsyslog_and_journald() {
        let want = Some(("web-1".into(), "myapp".into(), "hello world".into()));
        assert_eq!(one("Dec  6 19:18:49 web-1 myapp[42]: hello world"), want);
        assert_eq!(one("Dec  6 19:18:49 web-1 myapp: hello world"), want);
        assert_eq!(one("Dec  6 19:18:49 web-1 myapp hello world"), want);
        assert_eq!(
            one("Dec 06 19:18:49.123456 web-1 myapp[42]: hello world"),
            want
        );
        assert_eq!(
            one("2026-12-06T19:18:49.123456+00:00 web-1 myapp[42]: hello world"),
            want
        );
        assert_eq!(
            one("2026-12-06T19:18:49+0000 web-1 myapp: hello world"),
            want
        );
        assert_eq!(
            one("Sun 2026-12-06 19:18:49 UTC web-1 myapp[42]: hello world"),
            want
        );
        assert_eq!(
            one("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass").map(|t| t.1),
            Some("sshd(pam_unix)".into())
        );
        // An application's own log is not syslog.
        assert_eq!(one("2024-01-15 10:30:45 INFO app started"), None);
        assert_eq!(one("2024-01-15T10:30:45Z main ERROR x"), None);
        assert_eq!(one("Jan 15 10:30:45 ERROR app: x"), None);
        assert_eq!(one("Dec 06, 2026 7:20:06 PM Jul main"), None);
        assert_eq!(
            one("2024-01-15T10:30:45.123+00:00 myapp.db: connected to primary"),
            None
        );
        assert_eq!(
            one("Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2"),
            Some((
                "combo".into(),
                "-- root".into(),
                "ROOT LOGIN ON tty2".into()
            ))
        );
        assert_eq!(
            one("2026-12-07T14:27:10.843346+00:00 vm legacyd started").map(|t| t.1),
            Some("legacyd".into())
        );
    }
}
