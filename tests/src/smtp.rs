//! A small SMTP server for tests: it accepts every message and keeps it, so a test can read
//! what CareHub sent. It speaks just enough of RFC 5321 for a client such as lettre (EHLO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT), without TLS or authentication.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, as sent (dot-stuffing undone).
    pub data: String,
}

impl Received {
    /// The value of a header, unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let headers = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in headers.split("\r\n") {
            if let Some(current) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    current.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((key, rest)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_owned());
            }
        }
        value
    }
}

/// A running sink; stops when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Starts a sink on a free port.
    ///
    /// # Panics
    /// When no port can be had.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("an address")).await
    }

    /// Starts a sink on `address` (to bring a stopped one back on its port).
    ///
    /// # Panics
    /// When the address cannot be had.
    pub async fn start_on(address: SocketAddr) -> Self {
        Self::listen(address, false).await
    }

    /// Starts a sink that refuses every recipient with a permanent error that repeats the
    /// address, as real mail servers do.
    ///
    /// # Panics
    /// When no port can be had.
    pub async fn start_refusing() -> Self {
        Self::listen("127.0.0.1:0".parse().expect("an address"), true).await
    }

    async fn listen(address: SocketAddr, refuse: bool) -> Self {
        let listener = TcpListener::bind(address).await.expect("the sink's port");
        let address = listener.local_addr().expect("its address");
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let store = Arc::clone(&received);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(converse(stream, Arc::clone(&store), refuse));
            }
        });
        Self {
            address,
            received,
            task,
        }
    }

    /// `smtp://127.0.0.1:PORT`, for `CAREHUB_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// A free address no sink listens on yet, for a mail server that is down.
    ///
    /// # Panics
    /// When no port can be had.
    pub fn unused_address() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
    }

    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits (up to `within`) until at least `count` messages arrived, and returns them all.
    ///
    /// # Panics
    /// When they do not arrive in time.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{count} e-mails did not arrive in time; got {received:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn converse(stream: TcpStream, store: Arc<Mutex<Vec<Received>>>, refuse: bool) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" | "HELO" => "250-sink\r\n250 8BITMIME\r\n",
            "MAIL" => {
                from = command
                    .split_once(':')
                    .map(|(_, a)| a.trim().to_owned())
                    .unwrap_or_default();
                to.clear();
                "250 OK\r\n"
            }
            "RCPT" => {
                let recipient = command
                    .split_once(':')
                    .map(|(_, a)| a.trim().to_owned())
                    .unwrap_or_default();
                if refuse {
                    let refusal = format!("550 5.1.1 {recipient}: mailbox unavailable\r\n");
                    if write.write_all(refusal.as_bytes()).await.is_err() {
                        return;
                    }
                    continue;
                }
                to.push(recipient);
                "250 OK\r\n"
            }
            "DATA" => {
                if write.write_all(b"354 go on\r\n").await.is_err() {
                    return;
                }
                let mut data = String::new();
                loop {
                    line.clear();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(unstuffed);
                }
                store
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Received {
                        from: from.clone(),
                        to: to.clone(),
                        data,
                    });
                "250 queued\r\n"
            }
            "RSET" | "NOOP" => "250 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => "502 not implemented\r\n",
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}
