//! dcrgate-stub: the upstream for the end-to-end benchmarks. A minimal HTTP/1.1 server on one
//! thread that reads each request (Content-Length or chunked body, discarded) and answers a
//! fixed 200 JSON, keeping connections alive. No bookkeeping, so the proxies in front of it
//! are what the benchmark measures.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use dcrgate_benches::http1::MessageReader;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The body of every answer.
const BODY: &str = "{\"client_id\":\"bench\",\"ok\":true}\n";

/// The whole answer, built once.
fn response() -> &'static [u8] {
    let text = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    Box::leak(text.into_bytes().into_boxed_slice())
}

#[derive(Parser)]
#[command(
    name = "dcrgate-stub",
    about = "A fast HTTP/1.1 200 responder (keep-alive) for the benchmarks"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Largest request body accepted, bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body: u64,
}

async fn serve(mut tcp: TcpStream, max_body: u64, answer: &'static [u8]) {
    let _ = tcp.set_nodelay(true);
    let mut reader = MessageReader::new(max_body);
    loop {
        match reader.read_request(&mut tcp).await {
            Ok(Some(req)) => {
                if tcp.write_all(answer).await.is_err() || !req.keep_alive {
                    return;
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dcrgate-stub: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async {
        let listener = match TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("dcrgate-stub: cannot listen on {}: {e}", args.listen);
                return ExitCode::from(2);
            }
        };
        eprintln!("dcrgate-stub: listening on {}", args.listen);
        let answer = response();
        loop {
            match listener.accept().await {
                Ok((tcp, _)) => {
                    tokio::spawn(serve(tcp, args.max_body, answer));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off briefly rather than spin.
                    eprintln!("dcrgate-stub: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    })
}
