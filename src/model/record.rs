//! [`LogRecord`]: one log line, as every decoder produces it and the WAL stores it.

use super::{Micros, MAX_MSG_BYTES};

/// One log line with the columns of the `logs` table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRecord {
    pub ts: Micros,
    pub ingest_ts: Micros,
    pub tenant: String,
    pub service: String,
    pub host: String,
    pub level: String,
    pub msg: String,
    pub trace_id: Option<String>,
    /// A JSON object holding every attribute that has no column of its own.
    pub attrs: String,
    pub parse_failed: bool,
    pub truncated: bool,
}

impl LogRecord {
    /// Truncates `msg` to [`MAX_MSG_BYTES`] on a char boundary, setting `truncated`.
    pub fn enforce_msg_limit(&mut self) {
        if self.msg.len() > MAX_MSG_BYTES {
            let mut cut = MAX_MSG_BYTES;
            while !self.msg.is_char_boundary(cut) {
                cut -= 1;
            }
            self.msg.truncate(cut);
            self.truncated = true;
        }
    }

    /// Cuts `service`, `host`, `level` and `trace_id` to `max` bytes on a char boundary,
    /// setting `truncated`: a label is repeated in every index, dictionary and count table.
    pub fn enforce_label_limit(&mut self, max: usize) {
        let cut_one = |s: &mut String| {
            if s.len() > max {
                let mut cut = max;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                true
            } else {
                false
            }
        };
        let mut cut = cut_one(&mut self.service);
        cut |= cut_one(&mut self.host);
        cut |= cut_one(&mut self.level);
        if let Some(t) = self.trace_id.as_mut() {
            cut |= cut_one(t);
        }
        self.truncated |= cut;
    }

    /// Approximate bytes this record occupies in memory, for buffer accounting.
    pub fn approx_bytes(&self) -> usize {
        64 + self.tenant.len()
            + self.service.len()
            + self.host.len()
            + self.level.len()
            + self.msg.len()
            + self.trace_id.as_ref().map_or(0, |t| t.len())
            + self.attrs.len()
    }
}
