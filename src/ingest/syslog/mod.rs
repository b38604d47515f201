//! syslog: RFC 5424 and RFC 3164 messages to records ([`parse`], by `syslog_loose`), the TCP
//! framings ([`framing`]) and the UDP/TCP listener ([`listener`]).
//!
//! `app-name` → `service`, `hostname` → `host` (the peer's address when the message has none),
//! severity → `level`; facility, severity, procid, msgid, structured data and the protocol go to
//! `attrs`. A message without a syslog header is stored whole with `parse_failed` and the receive
//! time. A year-less RFC 3164 timestamp takes the year that does not put it in the future.

pub mod framing;
pub mod listener;

use chrono::{Datelike, NaiveDate, Utc};
use serde_json::{Map, Value};
use syslog_loose::{IncompleteDate, Protocol, SyslogSeverity, Variant};

use crate::model::{LogRecord, Micros, DEFAULT_TENANT, MAX_MSG_BYTES};

/// The year of a year-less date: this year's, unless that is more than a day ahead of `now`
/// (then last year's: a December line read in January).
pub fn infer_year(now: Micros, (month, day, hour, min, sec): IncompleteDate) -> i32 {
    let today = chrono::DateTime::from_timestamp_micros(now).unwrap_or_default();
    let year = today.year();
    // The latest year in which the date exists (Feb 29) and is not ahead of now.
    (year - 4..=year)
        .rev()
        .find(|y| {
            NaiveDate::from_ymd_opt(*y, month, day)
                .and_then(|d| d.and_hms_opt(hour, min, sec.min(59)))
                .is_some_and(|d| d.and_utc().timestamp_micros() <= now + 86_400_000_000)
        })
        .unwrap_or(year)
}

fn level_of(sev: SyslogSeverity) -> &'static str {
    match sev {
        SyslogSeverity::SEV_EMERG | SyslogSeverity::SEV_ALERT | SyslogSeverity::SEV_CRIT => "FATAL",
        SyslogSeverity::SEV_ERR => "ERROR",
        SyslogSeverity::SEV_WARNING => "WARN",
        SyslogSeverity::SEV_NOTICE | SyslogSeverity::SEV_INFO => "INFO",
        SyslogSeverity::SEV_DEBUG => "DEBUG",
    }
}

/// One syslog message (a UDP datagram or a TCP frame, bad UTF-8 already replaced) to a record;
/// `peer` names the sender when the message has no hostname.
pub fn parse(text: &str, peer: &str, now: Micros) -> LogRecord {
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let get_year = |d: IncompleteDate| infer_year(now, d);
    let parsed =
        syslog_loose::parse_message_with_year_exact_tz(text, get_year, Some(Utc), Variant::Either)
            .ok()
            .filter(|m| m.facility.is_some() || m.timestamp.is_some());
    let mut r = LogRecord {
        ts: now,
        ingest_ts: now,
        tenant: DEFAULT_TENANT.into(),
        service: "unknown".into(),
        host: peer.to_string(),
        level: "UNKNOWN".into(),
        ..LogRecord::default()
    };
    let Some(m) = parsed else {
        r.msg = text.to_string();
        r.parse_failed = true;
        r.attrs = "{}".into();
        r.enforce_msg_limit();
        return r;
    };
    let mut attrs = Map::new();
    if let Some(ts) = m.timestamp {
        // A stamp no row can hold (year 0000) keeps the receive time, flagged, kept in attrs.
        match crate::model::epoch::in_range(ts.timestamp_micros().into()) {
            Some(us) => r.ts = us,
            None => {
                r.parse_failed = true;
                attrs.insert("_invalid_ts".into(), Value::from(ts.to_rfc3339()));
            }
        }
    }
    if let Some(h) = m.hostname.filter(|h| *h != "-") {
        r.host = h.to_string();
    }
    if let Some(a) = m.appname.filter(|a| *a != "-") {
        r.service = a.to_string();
    }
    if let Some(s) = m.severity {
        r.level = level_of(s).into();
        attrs.insert("severity".into(), Value::from(s.as_str()));
    }
    if let Some(f) = m.facility {
        attrs.insert("facility".into(), Value::from(f.as_str()));
    }
    if let Some(p) = m.procid {
        attrs.insert("procid".into(), Value::from(p.to_string()));
    }
    if let Some(id) = m.msgid.filter(|id| *id != "-") {
        attrs.insert("msgid".into(), Value::from(id));
    }
    let protocol = match m.protocol {
        Protocol::RFC3164 => "rfc3164",
        Protocol::RFC5424(_) => "rfc5424",
    };
    attrs.insert("syslog".into(), Value::from(protocol));
    for element in &m.structured_data {
        let params: Map<String, Value> = element
            .params()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect();
        attrs.insert(element.id.to_string(), Value::Object(params));
    }
    r.msg = m.msg.to_string();
    r.attrs = Value::Object(attrs).to_string();
    if r.msg.len() > MAX_MSG_BYTES {
        r.enforce_msg_limit();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = 1_705_314_645_000_000; // 2024-01-15T10:30:45Z

    #[test]
    fn rfc5424_keeps_every_header_field() {
        let r = parse(
            r#"<165>1 2024-01-15T10:30:44.123Z web-1 checkout 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App"] card declined"#,
            "10.0.0.9",
            NOW,
        );
        assert_eq!(r.ts, 1_705_314_644_123_000);
        assert_eq!((r.host.as_str(), r.service.as_str()), ("web-1", "checkout"));
        assert_eq!(
            (r.level.as_str(), r.msg.as_str()),
            ("INFO", "card declined")
        );
        let a: Value = serde_json::from_str(&r.attrs).unwrap_or_default();
        assert_eq!(a["facility"], "local4");
        assert_eq!(a["severity"], "notice");
        assert_eq!(a["procid"], "4242");
        assert_eq!(a["msgid"], "ID47");
        assert_eq!(a["exampleSDID@32473"]["iut"], "3");
        assert!(!r.parse_failed);
    }

    #[test]
    fn rfc3164_year_never_lands_in_the_future() {
        let r = parse(
            "<11>Dec 31 23:59:59 db-2 postgres[77]: could not write",
            "p",
            NOW,
        );
        assert_eq!(r.ts, 1_704_067_199_000_000, "2023-12-31, not 2024");
        assert_eq!(
            (r.host.as_str(), r.service.as_str(), r.level.as_str()),
            ("db-2", "postgres", "ERROR")
        );
        let r = parse("<11>Jan 15 10:00:00 db-2 postgres: x", "p", NOW);
        assert_eq!(r.ts, 1_705_312_800_000_000);
    }

    #[test]
    fn a_leap_day_read_later_takes_the_last_leap_year() {
        // 2025-03-01: Feb 29 was last in 2024.
        assert_eq!(infer_year(1_740_787_200_000_000, (2, 29, 12, 0, 0)), 2024);
    }

    #[test]
    fn headerless_lines_are_kept_raw() {
        for line in [
            "just some text",
            "",
            "<>",
            "<999999999999>1 x",
            "\u{fffd}\u{fffd}",
        ] {
            let r = parse(line, "10.0.0.9", NOW);
            assert!(r.parse_failed, "{line:?}");
            assert_eq!(
                (r.msg.as_str(), r.ts, r.host.as_str()),
                (line, NOW, "10.0.0.9")
            );
        }
    }
}
