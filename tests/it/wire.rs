//! A raw PostgreSQL wire client for the abuse tests: it sends exactly the bytes a test names
//! (well-formed or not) and reads back whole backend messages.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long a test waits for the server before it fails (a bound, not a sync point).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One backend message: its type byte and body.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// A field of an ErrorResponse/NoticeResponse (`b'C'`: SQLSTATE, `b'S'`: severity, …).
    pub fn field(&self, code: u8) -> Option<String> {
        let mut rest = &self.body[..];
        while let Some((&c, tail)) = rest.split_first() {
            if c == 0 {
                break;
            }
            let end = tail.iter().position(|b| *b == 0)?;
            if c == code {
                return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
            }
            rest = &tail[end + 1..];
        }
        None
    }

    pub fn sqlstate(&self) -> String {
        self.field(b'C').unwrap_or_default()
    }

    /// The authentication request code of an `R` message.
    pub fn auth_code(&self) -> Option<i32> {
        (self.tag == b'R' && self.body.len() >= 4)
            .then(|| i32::from_be_bytes([self.body[0], self.body[1], self.body[2], self.body[3]]))
    }
}

/// A connection that speaks raw bytes.
pub struct Wire {
    pub stream: TcpStream,
}

impl Wire {
    pub async fn connect(port: u16) -> Wire {
        Self::connect_from([127, 0, 0, 1].into(), port).await
    }

    /// Connects from a chosen loopback address (127.0.0.2 is another client to the server).
    pub async fn connect_from(local: IpAddr, port: u16) -> Wire {
        Wire {
            stream: tcp_from(local, port).await,
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next whole message; `None` once the server has closed the connection.
    pub async fn recv(&mut self) -> Option<Msg> {
        let read = async {
            let mut head = [0u8; 5];
            self.stream.read_exact(&mut head).await.ok()?;
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut body = vec![0u8; len.checked_sub(4)?.min(1 << 24)];
            self.stream.read_exact(&mut body).await.ok()?;
            Some(Msg { tag: head[0], body })
        };
        tokio::time::timeout(PATIENCE, read)
            .await
            .expect("the server neither answered nor closed the connection")
    }

    /// Every message until (and including) one tagged `tag`, or until the server closes.
    pub async fn until(&mut self, tag: u8) -> Vec<Msg> {
        let mut out = Vec::new();
        while let Some(m) = self.recv().await {
            let done = m.tag == tag;
            out.push(m);
            if done {
                break;
            }
        }
        out
    }

    /// Everything the server sends until it closes the connection.
    pub async fn until_closed(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        while let Some(m) = self.recv().await {
            out.push(m);
        }
        out
    }

    /// Sends `bytes`, reads through ReadyForQuery, and returns the ErrorResponse among them.
    pub async fn error_of(&mut self, bytes: &[u8]) -> Msg {
        self.send(bytes).await;
        let got = self.until(b'Z').await;
        let tags: String = got.iter().map(|m| m.tag as char).collect();
        got.into_iter()
            .find(|m| m.tag == b'E')
            .unwrap_or_else(|| panic!("no ErrorResponse in {tags}"))
    }

    /// Logs in under `trust` authentication, through to ReadyForQuery.
    pub async fn trusted(port: u16) -> Wire {
        let mut w = Wire::connect(port).await;
        w.send(&startup("timberline")).await;
        let got = w.until(b'Z').await;
        assert_eq!(got.last().map(|m| m.tag), Some(b'Z'), "login: {got:?}");
        w
    }
}

/// A TCP connection to the server's `port` from `local`.
pub async fn tcp_from(local: IpAddr, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(local, 0)).expect("bind");
    socket
        .connect(SocketAddr::new([127, 0, 0, 1].into(), port))
        .await
        .expect("connect")
}

/// A frontend message: type byte, length, body.
pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A protocol 3.0 StartupMessage for `user`.
pub fn startup(user: &str) -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    for kv in ["user", user, "database", "timberline"] {
        body.extend_from_slice(kv.as_bytes());
        body.push(0);
    }
    body.push(0);
    [&((body.len() + 4) as u32).to_be_bytes()[..], &body].concat()
}

pub fn cstr(s: &str) -> Vec<u8> {
    [s.as_bytes(), &[0]].concat()
}

/// A simple Query.
pub fn query(sql: &str) -> Vec<u8> {
    msg(b'Q', &cstr(sql))
}

/// Parse of an unnamed statement with no declared types.
pub fn parse(sql: &str) -> Vec<u8> {
    msg(
        b'P',
        &[cstr(""), cstr(sql), 0u16.to_be_bytes().to_vec()].concat(),
    )
}

pub fn sync() -> Vec<u8> {
    msg(b'S', &[])
}

/// Execute of the unnamed portal with `max_rows`.
pub fn execute(max_rows: i32) -> Vec<u8> {
    msg(b'E', &[cstr(""), max_rows.to_be_bytes().to_vec()].concat())
}
