//! Just enough HTTP/1.1 for the benchmarks, over std's blocking sockets, so
//! timing a cold start measures the server and not a client library's
//! set-up: one request per connection (`Connection: close`), or, for counting
//! a request's instructions, many in turn on one [`KeepAlive`] connection.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// A loopback port free right now (the OS picks it; it is released at once,
/// so another process could take it before the server binds: unlikely here).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Status and body of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Sends `method path` (with `body` as JSON when not empty) on a connected
/// stream and reads the whole response.
pub fn send(
    mut stream: TcpStream,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<Response> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true)?;
    let address = stream.peer_addr()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&String::from_utf8_lossy(&raw))
}

/// Connects to `127.0.0.1:port` and sends one request.
pub fn request(port: u16, method: &str, path: &str, body: &str) -> anyhow::Result<Response> {
    let stream =
        TcpStream::connect(loopback(port)).with_context(|| format!("connect to port {port}"))?;
    send(stream, method, path, body)
}

/// One connection that sends GETs in turn and reads each answer by its
/// `content-length` (the api and the floor never answer these chunked).
#[derive(Debug)]
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
}

impl KeepAlive {
    /// Connects to `127.0.0.1:port`; every [`KeepAlive::get`] asks for `path`.
    pub fn connect(port: u16, path: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(loopback(port))
            .with_context(|| format!("connect to port {port}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_nodelay(true)?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n").into_bytes();
        Ok(Self {
            reader: BufReader::new(stream),
            request,
        })
    }

    /// Sends the GET and reads its whole answer; returns the status.
    pub fn get(&mut self) -> anyhow::Result<u16> {
        self.reader.get_mut().write_all(&self.request)?;
        let mut status = None;
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("the server closed the connection");
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if status.is_none() {
                status = line.split(' ').nth(1).and_then(|code| code.parse().ok());
            } else if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().context("content-length")?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        status.context("no status line")
    }
}

/// A whole `Connection: close` response; the body is taken as is (the api
/// and the floor answer with `content-length`, never chunked, for these).
fn parse_response(raw: &str) -> anyhow::Result<Response> {
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        bail!("an incomplete HTTP response: {raw:?}");
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    Ok(Response {
        status,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_split_into_status_and_body() {
        let check = |raw: &str, status: u16, body: &str| {
            assert_eq!(
                parse_response(raw).unwrap(),
                Response {
                    status,
                    body: body.to_owned()
                }
            );
        };
        check(
            "HTTP/1.1 200 OK\r\ncontent-length: 17\r\n\r\n{\"result\":\"pong\"}",
            200,
            "{\"result\":\"pong\"}",
        );
        check("HTTP/1.1 204 No Content\r\n\r\n", 204, "");
        assert!(parse_response("HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response("garbage\r\n\r\n").is_err());
    }
}
