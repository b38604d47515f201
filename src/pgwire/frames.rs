//! Checks every frame a pg client sends against the protocol's message layouts as its bytes are
//! read, before pgwire decodes it. pgwire's decoder trusts lengths and counts (it reads past a
//! frame's end, and panics on a short one); here a frame with a bad length, an unknown type, a
//! body that does not end where its fields end, or a size past the limit is refused before its
//! last byte reaches pgwire, and the connection ends with FATAL 08P01, as PostgreSQL answers.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest startup packet, as in PostgreSQL (`MAX_STARTUP_PACKET_LENGTH`).
const MAX_STARTUP: usize = 10_000;
/// Longest frame before the login completes (a SCRAM message is about 100 bytes).
pub const MAX_LOGIN_MESSAGE: usize = 16 << 10;

const CANCEL_REQUEST: u32 = 80_877_102;
const SSL_REQUEST: u32 = 80_877_103;
const GSS_REQUEST: u32 = 80_877_104;

/// Frontend message types after startup (PostgreSQL's protocol 3; `F`, the function call, is
/// not served).
const TYPES: &[u8] = b"pQPBCDEHSXdfc";

/// Why a frame is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("invalid length {0} of a startup packet")]
    StartupLength(usize),
    #[error("unsupported frontend protocol {0}.{1}")]
    Protocol(u32, u32),
    #[error("an SSL or GSS request where the startup packet belongs")]
    LateNegotiation,
    #[error("invalid frontend message type {0:?}")]
    Type(char),
    #[error("expected password response, got message type {0:?}")]
    BeforeLogin(char),
    #[error("invalid length {len} of message type {kind:?} (at most {max} bytes)")]
    Length { kind: char, len: usize, max: usize },
    #[error("invalid message format of message type {kind:?}: {why}")]
    Format { kind: char, why: &'static str },
}

/// A refusal: the first `pass` bytes of the observed chunk may go on to pgwire (they end
/// before the refused frame's last byte), the rest may not.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub pass: usize,
    pub error: FrameError,
}

/// The frame being read: its header, then its body.
#[derive(Debug)]
pub struct FrameCheck {
    /// The startup packet (untyped) has been read; typed frames follow.
    started: bool,
    /// Before login only password messages may come (a password is asked for).
    password_first: bool,
    logged_in: bool,
    max_message: usize,
    head: [u8; 5],
    head_len: usize,
    /// Body bytes still to come of the current frame (`None`: reading a header).
    need: Option<usize>,
    body: Vec<u8>,
    /// Once a frame is refused, every later call is refused the same way.
    refused: Option<FrameError>,
}

impl FrameCheck {
    /// `password_first`: the server asks every client for a password before anything else;
    /// `max_message`: the largest frame after login.
    pub fn new(password_first: bool, max_message: usize) -> FrameCheck {
        FrameCheck {
            started: false,
            password_first,
            logged_in: false,
            max_message,
            head: [0; 5],
            head_len: 0,
            need: None,
            body: Vec::new(),
            refused: None,
        }
    }

    /// The login completed: frames of any type and up to the full size may come.
    pub fn logged_in(&mut self) {
        self.logged_in = true;
    }

    /// Follows `bytes`, the next bytes read from the client.
    pub fn observe(&mut self, bytes: &[u8]) -> Result<(), Refused> {
        if let Some(error) = &self.refused {
            return Err(Refused {
                pass: 0,
                error: error.clone(),
            });
        }
        let refused = self.follow(bytes);
        if let Err(r) = &refused {
            self.refused = Some(r.error.clone());
        }
        refused
    }

    fn follow(&mut self, bytes: &[u8]) -> Result<(), Refused> {
        let mut at = 0;
        while at < bytes.len() {
            match self.need {
                None => {
                    let size = if self.started { 5 } else { 4 };
                    let take = (size - self.head_len).min(bytes.len() - at);
                    self.head[self.head_len..self.head_len + take]
                        .copy_from_slice(&bytes[at..at + take]);
                    self.head_len += take;
                    if self.head_len < size {
                        return Ok(());
                    }
                    // The header's last byte is at `at + take - 1`: it is withheld on refusal.
                    at += take - 1;
                    let need = self.header().map_err(|error| Refused { pass: at, error })?;
                    at += 1;
                    self.need = Some(need);
                    self.body.clear();
                    if need == 0 {
                        self.finish().map_err(|error| Refused {
                            pass: at - 1,
                            error,
                        })?;
                    }
                }
                Some(need) => {
                    let take = need.min(bytes.len() - at);
                    if self.keeps_body() {
                        self.body.extend_from_slice(&bytes[at..at + take]);
                    }
                    self.need = Some(need - take);
                    if need == take {
                        at += take - 1;
                        self.finish().map_err(|error| Refused { pass: at, error })?;
                        at += 1;
                    } else {
                        at += take;
                    }
                }
            }
        }
        Ok(())
    }

    /// The body length of the frame whose header was just read.
    fn header(&self) -> Result<usize, FrameError> {
        if !self.started {
            let len = u32::from_be_bytes([self.head[0], self.head[1], self.head[2], self.head[3]]);
            let len = len as usize;
            if !(8..=MAX_STARTUP).contains(&len) {
                return Err(FrameError::StartupLength(len));
            }
            return Ok(len - 4);
        }
        let kind = self.head[0];
        let len = u32::from_be_bytes([self.head[1], self.head[2], self.head[3], self.head[4]]);
        let len = len as usize;
        if !TYPES.contains(&kind) {
            return Err(FrameError::Type(kind as char));
        }
        if self.password_first && !self.logged_in && !matches!(kind, b'p' | b'X') {
            return Err(FrameError::BeforeLogin(kind as char));
        }
        let max = if self.logged_in {
            self.max_message
        } else {
            MAX_LOGIN_MESSAGE
        };
        if !(4..=max).contains(&len) {
            return Err(FrameError::Length {
                kind: kind as char,
                len,
                max,
            });
        }
        Ok(len - 4)
    }

    /// Bodies whose layout is checked are kept until their frame is complete.
    fn keeps_body(&self) -> bool {
        !self.started || !matches!(self.head[0], b'd' | b'p')
    }

    /// The current frame is complete: check its body, then expect the next header.
    fn finish(&mut self) -> Result<(), FrameError> {
        let checked = if self.started {
            check_body(self.head[0], &self.body)
        } else {
            check_startup(&self.body)
        };
        self.started = true;
        self.need = None;
        self.head_len = 0;
        if self.body.capacity() > 64 << 10 {
            self.body = Vec::new();
        }
        checked
    }
}

/// A startup packet's body: the protocol code, then `name\0value\0`… ending in `\0`; or a
/// cancel request.
fn check_startup(body: &[u8]) -> Result<(), FrameError> {
    let mut fields = Fields::new('\0', body);
    let code = fields.u32()?;
    match code {
        CANCEL_REQUEST => {
            // The process id, then the key: 4 bytes in protocol 3.0, up to 256 in 3.2.
            let key = fields.rest.len().saturating_sub(4);
            if !(4..=256).contains(&key) {
                return Err(fields.bad("cancel request key length"));
            }
            return Ok(());
        }
        SSL_REQUEST | GSS_REQUEST => return Err(FrameError::LateNegotiation),
        _ => {}
    }
    if code >> 16 != 3 {
        return Err(FrameError::Protocol(code >> 16, code & 0xffff));
    }
    loop {
        if fields.cstr()?.is_empty() {
            return fields.end();
        }
        fields.cstr()?;
    }
}

/// A typed frame's body, field by field, ending exactly at the frame's end.
fn check_body(kind: u8, body: &[u8]) -> Result<(), FrameError> {
    let mut f = Fields::new(kind as char, body);
    match kind {
        b'Q' | b'f' => {
            f.cstr()?;
        }
        b'P' => {
            f.cstr()?;
            f.cstr()?;
            let types = f.count()?;
            f.skip(types * 4)?;
        }
        b'B' => {
            f.cstr()?;
            f.cstr()?;
            let formats = f.count()?;
            f.skip(formats * 2)?;
            for _ in 0..f.count()? {
                match f.i32()? {
                    -1 => {}
                    len if len < 0 => return Err(f.bad("negative parameter length")),
                    len => f.skip(len as usize)?,
                }
            }
            let results = f.count()?;
            f.skip(results * 2)?;
        }
        b'C' | b'D' => {
            f.skip(1)?;
            f.cstr()?;
        }
        b'E' => {
            f.cstr()?;
            f.i32()?;
        }
        b'd' | b'p' => return Ok(()),
        _ => {} // H, S, X, c: no body
    }
    f.end()
}

/// Reads a body's fields without ever reading past its end.
struct Fields<'a> {
    kind: char,
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(kind: char, rest: &'a [u8]) -> Fields<'a> {
        Fields { kind, rest }
    }

    fn bad(&self, why: &'static str) -> FrameError {
        FrameError::Format {
            kind: self.kind,
            why,
        }
    }

    fn cstr(&mut self) -> Result<&'a [u8], FrameError> {
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.bad("string without its terminating zero byte"))?;
        let (s, rest) = self.rest.split_at(end);
        self.rest = &rest[1..];
        Ok(s)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or_else(|| self.bad("message ends inside a field"))?;
        self.rest = rest;
        Ok(*head)
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        self.take().map(u32::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, FrameError> {
        self.take().map(i32::from_be_bytes)
    }

    /// A count of the items that follow, unsigned as PostgreSQL reads it (up to 65,535
    /// parameters; the items must still fit in the frame).
    fn count(&mut self) -> Result<usize, FrameError> {
        self.take().map(u16::from_be_bytes).map(usize::from)
    }

    fn skip(&mut self, n: usize) -> Result<(), FrameError> {
        if n > self.rest.len() {
            return Err(self.bad("message ends inside a field"));
        }
        self.rest = &self.rest[n..];
        Ok(())
    }

    fn end(&self) -> Result<(), FrameError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.bad("bytes after the message's last field"))
        }
    }
}

/// A client stream whose bytes pass a [`FrameCheck`] on their way to pgwire. Once a frame is
/// refused every read fails with the reason (`InvalidData`); the bytes before it still arrive.
pub struct Checked<S> {
    io: S,
    check: FrameCheck,
    refused: Option<FrameError>,
}

impl<S> Checked<S> {
    /// Wraps `io`, whose first `buffered` bytes were already read (and must be checked too);
    /// returns how many of them may be decoded.
    pub fn new(io: S, mut check: FrameCheck, buffered: &[u8]) -> (Checked<S>, usize) {
        let (pass, refused) = match check.observe(buffered) {
            Ok(()) => (buffered.len(), None),
            Err(r) => (r.pass, Some(r.error)),
        };
        let checked = Checked { io, check, refused };
        (checked, pass)
    }

    pub fn logged_in(&mut self) {
        self.check.logged_in();
    }
}

fn invalid(e: &FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.clone())
}

impl<S: AsyncRead + Unpin> AsyncRead for Checked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = &this.refused {
            return Poll::Ready(Err(invalid(e)));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if let Err(refused) = this.check.observe(&buf.filled()[before..]) {
            let error = invalid(&refused.error);
            this.refused = Some(refused.error);
            if refused.pass == 0 {
                // Nothing to hand on: an empty read would look like the end of the stream.
                return Poll::Ready(Err(error));
            }
            buf.set_filled(before + refused.pass);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Checked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup() -> Vec<u8> {
        let body = [&196_608u32.to_be_bytes()[..], b"user\0timberline\0\0"].concat();
        [&(body.len() as u32 + 4).to_be_bytes()[..], &body].concat()
    }

    fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
        [&[kind][..], &(body.len() as u32 + 4).to_be_bytes(), body].concat()
    }

    fn session() -> FrameCheck {
        let mut check = FrameCheck::new(false, 1 << 20);
        check.observe(&startup()).expect("startup");
        check.logged_in();
        check
    }

    /// The stream fed one byte at a time must give the same answer as fed whole.
    fn both_ways(bytes: &[u8]) -> Result<(), Refused> {
        let whole = session().observe(bytes);
        let mut check = session();
        let mut bytewise = Ok(());
        for (i, b) in bytes.iter().enumerate() {
            if let Err(r) = check.observe(std::slice::from_ref(b)) {
                assert_eq!(r.pass, 0, "a refusal withholds the byte that revealed it");
                bytewise = Err(Refused {
                    pass: i,
                    error: r.error,
                });
                break;
            }
        }
        assert_eq!(whole, bytewise);
        whole
    }

    #[test]
    fn well_formed_frames_pass() {
        let bind = [
            &b"\0s1\0"[..],
            &[0, 1, 0, 0],
            &[0, 2],
            &[0, 0, 0, 3],
            b"abc",
            &[255, 255, 255, 255],
            &[0, 0],
        ]
        .concat();
        let frames = [
            frame(b'Q', b"SELECT 1\0"),
            frame(b'P', b"s1\0SELECT $1\0\0\x01\0\0\0\x19"),
            frame(b'B', &bind),
            frame(b'D', b"P\0"),
            frame(b'E', b"\0\0\0\0\0"),
            frame(b'S', b""),
            frame(b'd', b"anything"),
            frame(b'X', b""),
        ]
        .concat();
        assert_eq!(both_ways(&frames), Ok(()));
    }

    #[test]
    fn the_fuzzers_parse_is_refused_before_pgwire_sees_its_end() {
        // A Parse whose type count (68) runs past the frame: pgwire's decoder panicked on it.
        let parse = frame(b'P', b"\0SELECTc\0\0D\0\0\0\x06P\0E\0\0\0");
        let bytes = [frame(b'Q', b"SELECT 1\0"), parse.clone()].concat();
        let refused = both_ways(&bytes).expect_err("refused");
        assert_eq!(refused.pass, bytes.len() - 1);
        assert!(matches!(
            refused.error,
            FrameError::Format { kind: 'P', .. }
        ));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for (kind, body) in [
            (b'Q', &b"no terminator"[..]),
            (b'Q', b"SELECT 1\0trailing"),
            (b'B', b"\0\0\0\0\0\x01\xff\xff\xff\xfe\0\0"),
            (b'B', b"\0\0\0\0\0\x01\0\0\0\x09ab\0\0"),
            (b'B', b"\0\0\xff\xff"),
            (b'P', b"\0q\0\x80\x00"),
            (b'E', b"\0\0\0"),
            (b'S', b"x"),
            (b'D', b""),
        ] {
            let error = both_ways(&frame(kind, body)).expect_err("refused").error;
            assert!(matches!(error, FrameError::Format { .. }), "{error}");
        }
    }

    #[test]
    fn counts_are_unsigned_as_postgresql_reads_them() {
        // 40,000 parameters: a count past i16, as pgjdbc and pgx send up to 65,535.
        let n: u16 = 40_000;
        let parse = [
            &b"s\0SELECT 1\0"[..],
            &n.to_be_bytes(),
            &vec![0; 4 * 40_000],
        ]
        .concat();
        let nulls: Vec<u8> = (0..n).flat_map(|_| (-1i32).to_be_bytes()).collect();
        let bind = [&b"\0s\0\0\0"[..], &n.to_be_bytes(), &nulls, &[0, 0]].concat();
        let mut check = FrameCheck::new(false, 1 << 20);
        check.observe(&startup()).expect("startup");
        check.logged_in();
        assert_eq!(
            check.observe(&[frame(b'P', &parse), frame(b'B', &bind)].concat()),
            Ok(())
        );
    }

    #[test]
    fn a_refusal_sticks() {
        let mut check = session();
        assert!(check.observe(b"F\0\0\0\x04").is_err());
        let again = check.observe(&frame(b'S', b"")).expect_err("still refused");
        assert_eq!(
            again,
            Refused {
                pass: 0,
                error: FrameError::Type('F')
            }
        );
    }

    #[test]
    fn bad_headers_are_refused_at_the_header() {
        let unknown = both_ways(b"F\0\0\0\x04").expect_err("refused");
        assert_eq!(
            unknown,
            Refused {
                pass: 4,
                error: FrameError::Type('F')
            }
        );
        let short = both_ways(b"Q\0\0\0\x03").expect_err("refused");
        assert!(matches!(short.error, FrameError::Length { len: 3, .. }));
        let huge = both_ways(b"Q\x7f\xff\xff\xff").expect_err("refused");
        assert!(matches!(huge.error, FrameError::Length { .. }));
    }

    #[test]
    fn before_login_only_small_password_messages() {
        let mut check = FrameCheck::new(true, 1 << 20);
        check.observe(&startup()).expect("startup");
        let query = check
            .observe(&frame(b'Q', b"SELECT 1\0"))
            .expect_err("refused");
        assert_eq!(query.error, FrameError::BeforeLogin('Q'));
        let mut check = FrameCheck::new(true, 1 << 20);
        check.observe(&startup()).expect("startup");
        check.observe(&frame(b'p', b"secret\0")).expect("password");
        let big = check.observe(b"p\0\x01\0\0").expect_err("refused");
        assert!(matches!(big.error, FrameError::Length { .. }));
    }

    #[test]
    fn startup_packets() {
        let mut ok = FrameCheck::new(false, 1024);
        assert_eq!(ok.observe(&startup()), Ok(()));
        let cancel = [
            &16u32.to_be_bytes()[..],
            &CANCEL_REQUEST.to_be_bytes(),
            &[0; 8],
        ]
        .concat();
        assert_eq!(FrameCheck::new(false, 1024).observe(&cancel), Ok(()));
        let v2 = [&8u32.to_be_bytes()[..], &0x0002_0000u32.to_be_bytes()].concat();
        let refused = FrameCheck::new(false, 1024).observe(&v2).expect_err("v2");
        assert_eq!(refused.error, FrameError::Protocol(2, 0));
        let unterminated = [
            &13u32.to_be_bytes()[..],
            &196_608u32.to_be_bytes(),
            b"user\0",
        ]
        .concat();
        assert!(FrameCheck::new(false, 1024).observe(&unterminated).is_err());
        let long = 20_000u32.to_be_bytes();
        let refused = FrameCheck::new(false, 1024)
            .observe(&long)
            .expect_err("long");
        assert_eq!(refused.error, FrameError::StartupLength(20_000));
    }
}
