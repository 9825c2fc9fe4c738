//! `lab`: a simulated Windows Active Directory domain — domain controllers with replicated
//! computer accounts, member hosts with their machine secrets and local accounts, and the
//! faults that break secure channels — that answers the way Windows does.
//!
//! This part is the Windows "brain" and does no networking: [`model::Lab`] decides who may
//! log on (NTLM password or HTTP 401), who may use WinRM (or Access Denied), and runs the
//! command lines WinRS would start (`cmd.exe` built-ins, `nltest`, and a small Windows
//! PowerShell 5.1 subset) against the simulated state. [`faults`] places the real causes of
//! broken trust (snapshot restore, clones, replication lag, DC-side reset, no DC, ...) on
//! hosts, deterministically from a seed. The wire layer (WinRM listener) calls into it.
//!
//! The DC side is switchable ([`model::Directory`]): by default the in-memory DC model of
//! [`domain`]; with [`samba`], the computer accounts live in a real Samba AD DC pair and
//! every account read or write is an LDAPS operation on it (the one place the model does
//! networking of its own).

pub mod domain;
pub mod exec;
pub mod faults;
pub mod host;
pub mod latency;
pub mod lockout;
pub mod midrepair;
pub mod model;
pub mod samba;
pub mod tls;
pub mod wire;
