//! The client's per-message CPU in this crate, for `valgrind --tool=callgrind` (not a
//! test, and it asserts nothing about time): parses the five responses of one probe as
//! the lab builds them (Windows' shapes) and seals and opens one request and one response
//! body per round, and sets up two security contexts (their keys and RC4 states). Rounds from the first argument (default 1000).
//!
//! ```text
//! cargo build --release -p winrm --bench client_cpu
//! valgrind --tool=callgrind target/release/deps/client_cpu-* 1000
//! ```

use std::hint::black_box;

use winrm::encryption::{seal_body, unseal_body, CONTENT_TYPE};
use winrm::ntlm::{NegotiateFlags, Role, SessionSecurity};
use winrm::soap::{
    build_response, parse_response, CommandState, ReceiveOutput, Response, ShellInfo, StreamChunk,
};

fn responses() -> Vec<String> {
    let shell = ShellInfo {
        shell_id: "2D6534D0-6B12-40E3-B773-CBA26459CFA8".into(),
        owner: "svc-sweep".into(),
        client_ip: "127.0.0.1".into(),
        idle_timeout: "PT7200.000S".into(),
    };
    let id = "uuid:A6C9A2F1-9B0C-4B41-8A7F-3C2D1E0F9A8B";
    let stdout: Vec<u8> = b"{\"host\":\"ws-0001\",\"trust\":true} "
        .iter()
        .copied()
        .cycle()
        .take(1800)
        .collect();
    vec![
        build_response(
            id,
            &Response::Created {
                shell_id: shell.shell_id.clone(),
            },
            Some(&shell),
        ),
        build_response(
            id,
            &Response::CommandStarted {
                command_id: "6C5A7E43-1B5F-4C2D-9E0A-7B8C9D0E1F2A".into(),
            },
            None,
        ),
        build_response(
            id,
            &Response::Received(ReceiveOutput {
                chunks: vec![
                    StreamChunk {
                        stream: "stdout".into(),
                        command_id: Some("6C5A7E43-1B5F-4C2D-9E0A-7B8C9D0E1F2A".into()),
                        data: stdout,
                        end: true,
                    },
                    StreamChunk {
                        stream: "stderr".into(),
                        command_id: Some("6C5A7E43-1B5F-4C2D-9E0A-7B8C9D0E1F2A".into()),
                        data: Vec::new(),
                        end: true,
                    },
                ],
                state: Some(CommandState {
                    command_id: "6C5A7E43-1B5F-4C2D-9E0A-7B8C9D0E1F2A".into(),
                    done: true,
                    exit_code: Some(0),
                }),
            }),
            None,
        ),
        build_response(id, &Response::Signalled, None),
        build_response(id, &Response::Deleted, None),
    ]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let docs = responses();
    let flags = NegotiateFlags::INITIATOR_DEFAULT;
    let mut client = SessionSecurity::new(Role::Initiator, [0x5a; 16], flags);
    let mut server = SessionSecurity::new(Role::Acceptor, [0x5a; 16], flags);
    let request = "x".repeat(6000);
    let receive = docs.get(2).cloned().unwrap_or_default();
    for _ in 0..rounds {
        // Two contexts per host (probe and logon test), as after each handshake.
        for _ in 0..2 {
            black_box(SessionSecurity::new(
                Role::Initiator,
                black_box([0x3c; 16]),
                flags,
            ));
        }
        for d in &docs {
            let _ = black_box(parse_response(black_box(d.as_bytes())));
        }
        let body = seal_body(&mut client, request.as_bytes());
        let opened = unseal_body(&mut server, CONTENT_TYPE, &body);
        black_box(opened.map(|o| o.len()).unwrap_or(0));
        let body = seal_body(&mut server, receive.as_bytes());
        let opened = unseal_body(&mut client, CONTENT_TYPE, &body);
        black_box(opened.map(|o| o.len()).unwrap_or(0));
    }
}
