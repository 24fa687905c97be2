//! A minimal HTTP/1.1 client for the timed loop: one keep-alive connection,
//! pre-built request bytes, responses read by Content-Length. Much cheaper
//! than a general client, so on a shared 2-core machine more of the CPU
//! goes to the server under test.
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `req` and returns the status and body; reconnects once if the
    /// server closed the connection.
    pub async fn send(&mut self, req: &[u8]) -> Option<(u16, &[u8])> {
        for _ in 0..2 {
            if self.stream.is_none() {
                let s = TcpStream::connect(&self.addr).await.ok()?;
                let _ = s.set_nodelay(true);
                self.stream = Some(s);
            }
            match self.round_trip(req).await {
                Some((status, start, end)) => return Some((status, &self.buf[start..end])),
                None => self.stream = None,
            }
        }
        None
    }

    async fn round_trip(&mut self, req: &[u8]) -> Option<(u16, usize, usize)> {
        let stream = self.stream.as_mut()?;
        stream.write_all(req).await.ok()?;
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        let header_end = loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
        };
        let head = std::str::from_utf8(&self.buf[..header_end]).ok()?;
        let status: u16 = head.get(9..12)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while self.buf.len() < header_end + len {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Some((status, header_end, header_end + len))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A POST with a form body and HTTP Basic credentials.
pub fn post_form(host: &str, path: &str, basic: (&str, &str), form: &[(&str, &str)]) -> Vec<u8> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let auth = data_encoding::BASE64.encode(format!("{}:{}", basic.0, basic.1).as_bytes());
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A form POST without client authentication in a header (a client
/// assertion travels in the form).
pub fn post_form_plain(host: &str, path: &str, form: &[(&str, &str)]) -> Vec<u8> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn get(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// Pulls a string field out of a JSON body without a full parse.
pub fn json_str<'a>(body: &'a [u8], field: &str) -> Option<&'a str> {
    let s = std::str::from_utf8(body).ok()?;
    let key = format!("\"{field}\":\"");
    let start = s.find(&key)? + key.len();
    let end = s[start..].find('"')? + start;
    Some(&s[start..end])
}
