//! What one evaluation means: the rule query's rows read as label sets and values, and each
//! label set's state stepped (ok → pending → firing → resolved), with the notifications due —
//! at most one firing notification per label set within the rule's cooldown.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use serde::{Deserialize, Serialize};

use super::rule::Rule;
use crate::query::statement::Rows;

/// Most label sets one rule follows.
pub const MAX_SERIES: usize = 1000;

/// A label set: the values of the query's non-number columns, by column name.
pub type Labels = BTreeMap<String, String>;

/// An answer read as label sets and their values.
pub type Values = Vec<(Labels, Option<f64>)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Ok,
    Pending,
    Firing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ok => "ok",
            Phase::Pending => "pending",
            Phase::Firing => "firing",
        }
    }
}

/// One label set's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub labels: Labels,
    pub phase: Phase,
    pub value: Option<f64>,
    /// When the current phase began (ms since the epoch).
    pub since: Option<i64>,
    /// Whether receivers were told of the current firing.
    pub notified: bool,
    pub last_notified: Option<i64>,
    pub last_fired: Option<i64>,
}

impl Series {
    pub fn new(labels: Labels) -> Series {
        Series {
            labels,
            phase: Phase::Ok,
            value: None,
            since: None,
            notified: false,
            last_notified: None,
            last_fired: None,
        }
    }
}

/// A notification due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Firing,
    Resolved,
}

/// What one step changed: the history event (if any) and the notification due (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stepped {
    pub event: Option<&'static str>,
    pub notice: Option<Notice>,
}

/// Steps `s` with this evaluation's `value` (none: the label set is gone from the answer, which
/// counts as not breaching). `quiet`: the rule is muted or a silence matches, so no firing
/// notification goes out now (one goes out when it no longer is, if still firing).
pub fn step(s: &mut Series, value: Option<f64>, rule: &Rule, now: i64, quiet: bool) -> Stepped {
    let breach = value.is_some_and(|v| rule.breached(v));
    s.value = value;
    let cooldown = i64::try_from(rule.cooldown.as_millis()).unwrap_or(i64::MAX);
    let may_notify = |s: &Series| {
        !quiet
            && s.last_notified
                .is_none_or(|t| now.saturating_sub(t) >= cooldown)
    };
    let mut out = Stepped::default();
    match (s.phase, breach) {
        (Phase::Ok, false) => {}
        (Phase::Ok, true) | (Phase::Pending, true) => {
            let hold = i64::try_from(rule.hold.as_millis()).unwrap_or(i64::MAX);
            let pending_since = match s.phase {
                Phase::Pending => s.since.unwrap_or(now),
                _ => now,
            };
            if now.saturating_sub(pending_since) >= hold {
                s.phase = Phase::Firing;
                s.since = Some(now);
                s.last_fired = Some(now);
                s.notified = false;
                out.event = Some("firing");
                if may_notify(s) {
                    s.notified = true;
                    s.last_notified = Some(now);
                    out.notice = Some(Notice::Firing);
                }
            } else if s.phase == Phase::Ok {
                s.phase = Phase::Pending;
                s.since = Some(now);
                out.event = Some("pending");
            }
        }
        (Phase::Pending, false) => {
            s.phase = Phase::Ok;
            s.since = None;
            out.event = Some("cleared");
        }
        (Phase::Firing, true) => {
            if may_notify(s) {
                out.event = Some(if s.notified { "reminded" } else { "notified" });
                s.notified = true;
                s.last_notified = Some(now);
                out.notice = Some(Notice::Firing);
            }
        }
        (Phase::Firing, false) => {
            s.phase = Phase::Ok;
            s.since = None;
            out.event = Some("resolved");
            if s.notified {
                out.notice = Some(Notice::Resolved);
            }
            s.notified = false;
        }
    }
    out
}

/// The label sets and values of a rule query's answer: the value is its last number column,
/// the labels are its other columns (as text); a label set answered twice takes its last row's
/// value. At most [`MAX_SERIES`]; the second part says how many more there were.
pub fn series_of(rows: &Rows) -> Result<(Values, usize), String> {
    let fields = rows.schema.fields();
    let Some(value_at) = fields.iter().rposition(|f| is_number(f.data_type())) else {
        return Err(format!(
            "the rule's query returns no number column (it returns {}); end it with one, e.g. count(*)",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let mut out = Vec::new();
    let mut more = 0;
    for batch in &rows.batches {
        let values = cast(batch.column(value_at), &DataType::Float64).map_err(|e| e.to_string())?;
        let values = values.as_primitive::<Float64Type>();
        let mut labels = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            if i != value_at {
                let text = cast(batch.column(i), &DataType::Utf8).map_err(|e| e.to_string())?;
                labels.push((f.name().clone(), text));
            }
        }
        for row in 0..batch.num_rows() {
            if out.len() >= MAX_SERIES {
                more += 1;
                continue;
            }
            let set: Labels = labels
                .iter()
                .map(|(name, text)| {
                    let text = text.as_string::<i32>();
                    let v = if text.is_null(row) {
                        ""
                    } else {
                        text.value(row)
                    };
                    (name.clone(), v.to_string())
                })
                .collect();
            let value = (!values.is_null(row)).then(|| values.value(row));
            // A label set answered twice (no label columns and many rows, say) is one alert:
            // its last row's value counts.
            match out.iter_mut().find(|(l, _)| *l == set) {
                Some(existing) => existing.1 = value,
                None => out.push((set, value)),
            }
        }
    }
    Ok((out, more))
}

fn is_number(t: &DataType) -> bool {
    t.is_numeric()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn rule(hold: u64, cooldown: u64) -> Rule {
        Rule {
            name: "r".into(),
            sql: "SELECT 1".into(),
            above: Some(10.0),
            below: None,
            every: Duration::from_secs(1),
            hold: Duration::from_secs(hold),
            cooldown: Duration::from_secs(cooldown),
            summary: None,
        }
    }

    #[test]
    fn fires_after_for_and_resolves_once() {
        let r = rule(2, 60);
        let mut s = Series::new(Labels::new());
        assert_eq!(
            step(&mut s, Some(11.0), &r, 0, false).event,
            Some("pending")
        );
        assert_eq!(
            step(&mut s, Some(12.0), &r, 1000, false),
            Stepped::default()
        );
        let fired = step(&mut s, Some(12.0), &r, 2000, false);
        assert_eq!(
            (fired.event, fired.notice),
            (Some("firing"), Some(Notice::Firing))
        );
        // Still firing within the cooldown: nothing more.
        assert_eq!(
            step(&mut s, Some(13.0), &r, 3000, false),
            Stepped::default()
        );
        let resolved = step(&mut s, Some(1.0), &r, 4000, false);
        assert_eq!(resolved.notice, Some(Notice::Resolved));
        assert_eq!(step(&mut s, None, &r, 5000, false), Stepped::default());
    }

    #[test]
    fn a_pending_series_that_falls_back_is_cleared_without_a_notice() {
        let r = rule(10, 60);
        let mut s = Series::new(Labels::new());
        step(&mut s, Some(11.0), &r, 0, false);
        let c = step(&mut s, Some(2.0), &r, 1000, false);
        assert_eq!((c.event, c.notice), (Some("cleared"), None));
        assert_eq!(s.phase, Phase::Ok);
    }

    #[test]
    fn no_second_firing_notice_within_the_cooldown() {
        let r = rule(0, 60);
        let mut s = Series::new(Labels::new());
        assert_eq!(
            step(&mut s, Some(11.0), &r, 0, false).notice,
            Some(Notice::Firing)
        );
        assert_eq!(
            step(&mut s, Some(1.0), &r, 1000, false).notice,
            Some(Notice::Resolved)
        );
        // Fires again 2 s later: recorded, not sent, and no resolved for it either.
        let again = step(&mut s, Some(11.0), &r, 2000, false);
        assert_eq!((again.event, again.notice), (Some("firing"), None));
        // Once the cooldown has passed, the still-firing series is told.
        let told = step(&mut s, Some(11.0), &r, 60_000, false);
        assert_eq!(
            (told.event, told.notice),
            (Some("notified"), Some(Notice::Firing))
        );
        // And reminded after another cooldown.
        assert_eq!(step(&mut s, Some(11.0), &r, 90_000, false).notice, None);
        assert_eq!(
            step(&mut s, Some(11.0), &r, 120_000, false).event,
            Some("reminded")
        );
    }

    #[test]
    fn quiet_holds_the_notice_until_it_ends() {
        let r = rule(0, 60);
        let mut s = Series::new(Labels::new());
        let muted = step(&mut s, Some(11.0), &r, 0, true);
        assert_eq!((muted.event, muted.notice), (Some("firing"), None));
        // Resolving a firing nobody was told of sends nothing.
        assert_eq!(step(&mut s, Some(1.0), &r, 1000, true).notice, None);
        step(&mut s, Some(11.0), &r, 2000, true);
        assert_eq!(
            step(&mut s, Some(11.0), &r, 3000, false).notice,
            Some(Notice::Firing)
        );
    }

    #[test]
    fn labels_are_the_other_columns_and_the_value_the_last_number() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("service", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
            Field::new("ratio", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("api"), None])),
                Arc::new(Int64Array::from(vec![3, 4])),
                Arc::new(Float64Array::from(vec![Some(0.5), None])),
            ],
        )
        .unwrap();
        let rows = Rows {
            schema,
            batches: vec![batch],
            truncated: false,
        };
        let (series, more) = series_of(&rows).unwrap();
        assert_eq!(more, 0);
        assert_eq!(series[0].0.get("service").map(String::as_str), Some("api"));
        assert_eq!(series[0].0.get("n").map(String::as_str), Some("3"));
        assert_eq!(series[0].1, Some(0.5));
        assert_eq!(series[1].0.get("service").map(String::as_str), Some(""));
        assert_eq!(series[1].1, None);
    }

    #[test]
    fn a_label_set_answered_twice_is_one_alert() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![3, 9]))])
                .unwrap();
        let rows = Rows {
            schema,
            batches: vec![batch],
            truncated: false,
        };
        let (series, _) = series_of(&rows).unwrap();
        assert_eq!(series, vec![(Labels::new(), Some(9.0))]);
    }

    #[test]
    fn an_answer_without_a_number_is_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let rows = Rows {
            schema,
            batches: vec![],
            truncated: false,
        };
        assert!(series_of(&rows).unwrap_err().contains("no number column"));
    }
}
