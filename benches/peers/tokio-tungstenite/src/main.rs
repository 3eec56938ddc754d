//! An echo server on tokio-tungstenite for `scripts/peers.sh`: one task per connection
//! on tokio's current-thread runtime (one thread, like wsreactor), each text or binary
//! message sent back as it came (tungstenite answers pings and the Close by itself).
//! TCP_NODELAY on every connection, as wsreactor sets it.
//!
//! `peer-tokio-tungstenite [--listen 127.0.0.1:PORT]` (default port 0: any free one); it
//! prints `listening on ADDR` on stderr and refuses any address outside 127.0.0.0/8.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo(stream: TcpStream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

fn listen_addr() -> SocketAddr {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = match args.as_slice() {
        [] => "127.0.0.1:0".parse().unwrap(),
        [flag, a] if flag == "--listen" => a.parse().expect("--listen ADDR:PORT"),
        _ => panic!("usage: peer-tokio-tungstenite [--listen 127.0.0.1:PORT]"),
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
            use tokio_tungstenite::tungstenite::Error;
            match echo(stream).await {
                Ok(()) | Err(Error::ConnectionClosed | Error::AlreadyClosed) => {}
                Err(e) => eprintln!("connection: {e}"),
            }
        });
    }
}
