//! W6 anchor: a TCP echo server on Tokio's single-threaded runtime.
//!
//!   echo_tokio [--port P]      (P = 0, the default: the kernel picks one)
//!
//! Listens on 127.0.0.1 only (SO_REUSEADDR, backlog 4096), prints "port N" on
//! stdout; a task per connection (TCP_NODELAY) reads up to 64 KiB and writes
//! it all back (`read` / `write_all`), on a `current_thread` runtime: one
//! thread, as for every other W6 server. SIGINT or SIGTERM ends `block_on`;
//! dropping the runtime drops every connection's task, and the process exits 0.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{signal, Signal, SignalKind};

const BUF: usize = 64 * 1024;

async fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; BUF];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return, // end of stream or a reset: done with it
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // Like the other servers: a failed setsockopt is not fatal.
                let _ = stream.set_nodelay(true);
                tokio::spawn(echo(stream));
            }
            Err(e) => eprintln!("echo_tokio: accept: {e}"),
        }
    }
}

/// Ready when any of the signals has arrived (select! without the "macros"
/// feature, and without std::future::poll_fn, which Debian's rustc 1.63 lacks).
struct AnySignal(Vec<Signal>);

impl Future for AnySignal {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        for s in self.0.iter_mut() {
            if s.poll_recv(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

fn bind(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(4096)
}

async fn run(port: u16) -> io::Result<()> {
    // The handlers go in before the port line: from then on a SIGTERM is a stop.
    let stop = AnySignal(vec![
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
    ]);
    let listener = bind(port)?;
    println!("port {}", listener.local_addr()?.port()); // stdout is flushed per line
    tokio::spawn(serve(listener));
    stop.await;
    Ok(())
}

fn parse_port() -> Option<u16> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Some(0),
        [flag, p] if flag == "--port" => p.parse().ok(),
        _ => None,
    }
}

fn main() -> ExitCode {
    let port = match parse_port() {
        Some(port) => port,
        None => {
            eprintln!("usage: echo_tokio [--port P (0..65535)]");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo_tokio: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(port));
    drop(rt); // cancels the listener's and the connections' tasks, closing their sockets
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_tokio: {e}");
            ExitCode::from(1)
        }
    }
}
