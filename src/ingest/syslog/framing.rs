//! TCP syslog framing (RFC 6587): octet counting (`LEN SP MSG`) or one message per line, chosen
//! per connection by its first bytes. A frame over the limit is cut (and flagged), its rest
//! skipped, without ever buffering more than the limit: the length a client claims is never
//! an allocation size.

/// One message cut from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub bytes: Vec<u8>,
    /// The message was longer than the limit and was cut.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Unknown,
    OctetCounting,
    Lines,
}

/// Cuts a connection's bytes into frames.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max: usize,
    mode: Mode,
    /// Bytes of a cut frame still to discard.
    skip: usize,
    /// Discard up to the next newline (a cut line).
    skip_line: bool,
}

/// Digits of an octet count that could be one (RFC 6587 lengths are at most 9 digits here).
fn octet_header(buf: &[u8]) -> Option<Option<(usize, usize)>> {
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 9 {
        return Some(None);
    }
    if digits == buf.len() {
        return None; // need more bytes
    }
    if buf[digits] != b' ' {
        return Some(None);
    }
    let len: usize = std::str::from_utf8(&buf[..digits]).ok()?.parse().ok()?;
    Some(Some((digits + 1, len)))
}

impl Framer {
    pub fn new(max: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            max: max.max(1),
            mode: Mode::Unknown,
            skip: 0,
            skip_line: false,
        }
    }

    /// Adds bytes read from the connection; complete frames are appended to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Frame>) {
        if self.skip > 0 {
            let n = self.skip.min(data.len());
            self.skip -= n;
            data = &data[n..];
        }
        if self.skip_line {
            match data.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    self.skip_line = false;
                    data = &data[i + 1..];
                }
                None => return,
            }
        }
        self.buf.extend_from_slice(data);
        self.drain(out);
    }

    fn drain(&mut self, out: &mut Vec<Frame>) {
        loop {
            let lead = self
                .buf
                .iter()
                .take_while(|b| matches!(b, b'\n' | b'\r' | b' ' | b'\0'))
                .count();
            self.buf.drain(..lead);
            if self.buf.is_empty() {
                return;
            }
            if self.mode == Mode::Unknown {
                self.mode = match octet_header(&self.buf) {
                    None => return, // only digits so far
                    Some(Some((h, _))) if self.buf.get(h).is_none() => return,
                    Some(Some((h, _))) if self.buf[h] == b'<' => Mode::OctetCounting,
                    _ => Mode::Lines,
                };
            }
            let done = match self.mode {
                Mode::OctetCounting => self.octet_frame(out),
                _ => self.line_frame(out),
            };
            if !done {
                return;
            }
        }
    }

    /// Cuts one octet-counted frame; falls back to a line when the header is not a count.
    fn octet_frame(&mut self, out: &mut Vec<Frame>) -> bool {
        match octet_header(&self.buf) {
            None => false,
            Some(None) => self.line_frame(out),
            Some(Some((header, len))) => {
                let keep = len.min(self.max);
                if self.buf.len() < header + keep {
                    return false;
                }
                let bytes = self.buf[header..header + keep].to_vec();
                let available = self.buf.len() - header;
                let consumed = len.min(available);
                self.buf.drain(..header + consumed);
                self.skip = len - consumed;
                out.push(Frame {
                    bytes,
                    truncated: len > keep,
                });
                true
            }
        }
    }

    /// Cuts one newline-terminated frame, or a cut one when the line outgrows the limit.
    fn line_frame(&mut self, out: &mut Vec<Frame>) -> bool {
        if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let truncated = i > self.max;
            let mut bytes: Vec<u8> = self.buf.drain(..=i).take(i.min(self.max)).collect();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            out.push(Frame { bytes, truncated });
            return true;
        }
        if self.buf.len() > self.max {
            let bytes = self.buf[..self.max].to_vec();
            self.buf.clear();
            self.skip_line = true;
            out.push(Frame {
                bytes,
                truncated: true,
            });
        }
        false
    }

    /// The connection ended: what is left (a last line without its newline) as a frame.
    pub fn finish(mut self) -> Option<Frame> {
        let lead = self
            .buf
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        self.buf.drain(..lead);
        (!self.buf.is_empty() && !self.skip_line && self.skip == 0).then(|| Frame {
            truncated: false,
            bytes: std::mem::take(&mut self.buf),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out);
        }
        out.extend(f.finish());
        out.into_iter()
            .map(|x| (String::from_utf8_lossy(&x.bytes).into_owned(), x.truncated))
            .collect()
    }

    #[test]
    fn octet_counting_across_reads() {
        let got = frames(100, &[b"11 <13>1 hello", b" 9 <13>1 b", b"ye"]);
        assert_eq!(
            got,
            vec![("<13>1 hello".into(), false), ("<13>1 bye".into(), false)]
        );
    }

    #[test]
    fn newline_framing_keeps_the_last_line() {
        let got = frames(100, &[b"<13>a\r\n<13>b\n", b"<13>c"]);
        assert_eq!(
            got,
            vec![
                ("<13>a".into(), false),
                ("<13>b".into(), false),
                ("<13>c".into(), false)
            ]
        );
    }

    #[test]
    fn huge_claims_are_cut_not_allocated() {
        let got = frames(4, &[b"999999999 <13>1 abcdef"]);
        assert_eq!(got, vec![("<13>".into(), true)]);
        let got = frames(5, &[b"<13>abcdefgh", b"ij\n<14>x\n"]);
        assert_eq!(got, vec![("<13>a".into(), true), ("<14>x".into(), false)]);
        let got = frames(5, &[b"8 <13>1 a", b"b5 <14>x"]);
        assert_eq!(got, vec![("<13>1".into(), true), ("<14>x".into(), false)]);
    }
}
