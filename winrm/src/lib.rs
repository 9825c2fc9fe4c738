//! `winrm`: a WS-Management (WinRS `cmd` shell) client that Windows accepts, and the
//! server-side building blocks the lab reuses to answer the way Windows does.
//!
//! The crate is layered like hickory-dns and rustls: a pure, sans-IO core and a thin
//! async transport on top.
//!
//! * [`ntlm`] — NTLMv2 messages, the initiator and acceptor handshakes as typed states,
//!   and session security (signing and sealing, MS-NLMP 3.4).
//! * [`encryption`] — the `multipart/encrypted` framing of MS-WSMV 2.2.9.1 that carries
//!   sealed SOAP bodies over plain HTTP.
//! * [`soap`] — WS-Management envelopes: client requests and response parsing, server-side
//!   request parsing and response/fault building, faults typed by their code.
//! * [`powershell`] — `-EncodedCommand` encoding and `#< CLIXML` stderr decoding.
//! * [`transport`] — one HTTP(S) connection per host with its authentication context.
//! * [`session`] — a host session: shells, commands, stdin, output, exit codes.
//! * [`server`] — the HTTP side of a WinRM listener (authentication, sealing) for the lab.

pub mod encryption;
pub mod error;
pub mod ntlm;
pub mod powershell;
pub mod secret;
pub mod server;
pub mod session;
pub mod soap;
pub mod transport;

pub use error::Error;
pub use secret::Secret;
pub use session::{Output, Session, SessionConfig};
