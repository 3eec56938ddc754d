//! An echo server on fastwebsockets 0.10 for `scripts/peers.sh`: the crate's own echo
//! example (hyper's HTTP/1 upgrade, a `FragmentCollector` per connection, automatic
//! pongs and Close replies) on tokio's current-thread runtime, so that it runs on one
//! thread like wsreactor. TCP_NODELAY on every connection, as wsreactor sets it.
//!
//! `peer-fastwebsockets [--listen 127.0.0.1:PORT]` (default port 0: any free one); it
//! prints `listening on ADDR` on stderr and refuses any address outside 127.0.0.0/8.

use std::net::SocketAddr;

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::net::TcpListener;

async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}

async fn upgrade(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        if let Err(e) = echo(fut).await {
            if !matches!(
                e,
                WebSocketError::UnexpectedEOF | WebSocketError::ConnectionClosed
            ) {
                eprintln!("connection: {e}");
            }
        }
    });
    Ok(response)
}

fn listen_addr() -> SocketAddr {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = match args.as_slice() {
        [] => "127.0.0.1:0".parse().unwrap(),
        [flag, a] if flag == "--listen" => a.parse().expect("--listen ADDR:PORT"),
        _ => panic!("usage: peer-fastwebsockets [--listen 127.0.0.1:PORT]"),
    };
    assert!(addr.ip().is_loopback(), "loopback addresses only: {addr}");
    addr
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind(listen_addr()).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = http1::Builder::new()
                .serve_connection(io, service_fn(upgrade))
                .with_upgrades();
            let _ = conn.await;
        });
    }
}
