//! Why an Active Directory operation failed: each variant names the DC (as given in the
//! URL) and the object, and says what to do.

use std::time::Duration;

/// An Active Directory operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdError {
    /// The configuration cannot work (bad URL, unreadable CA file, empty password…).
    #[error("LDAP configuration: {message}")]
    InvalidConfig {
        /// What is wrong and what to do.
        message: String,
    },
    /// `ldap://` without StartTLS: the password would cross the network in clear text.
    #[error(
        "refusing a plain-text LDAP bind to {url}: the password would cross the network unencrypted; \
         use ldaps:// (port 636) or StartTLS on ldap://"
    )]
    PlainLdapRefused {
        /// The URL as given.
        url: String,
    },
    /// No TCP connection.
    #[error(
        "cannot reach domain controller {dc}: {source} (check the name, the port and the firewall)"
    )]
    Connect {
        /// The DC.
        dc: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Something took longer than allowed.
    #[error("domain controller {dc} did not answer in time ({what}, waited {after:?})")]
    Timeout {
        /// The DC.
        dc: String,
        /// What we were waiting for.
        what: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// The DC's certificate does not chain to a trusted CA.
    #[error(
        "the TLS certificate of domain controller {dc} is not trusted ({message}); pass the CA that \
         issued it with --ca-file (PEM), or install it in the system store"
    )]
    TlsUntrusted {
        /// The DC.
        dc: String,
        /// The TLS library's reason.
        message: String,
    },
    /// The certificate is trusted but issued for another name.
    #[error(
        "the TLS certificate of domain controller {dc} is not valid for the name {name} ({message}); \
         use the DC name that its certificate carries"
    )]
    TlsNameMismatch {
        /// The DC.
        dc: String,
        /// The name we verified.
        name: String,
        /// The TLS library's reason.
        message: String,
    },
    /// Another TLS failure (protocol, expired certificate…).
    #[error("TLS with domain controller {dc} failed: {message}")]
    Tls {
        /// The DC.
        dc: String,
        /// The TLS library's reason.
        message: String,
    },
    /// The DC did not agree to StartTLS.
    #[error("domain controller {dc} refused StartTLS ({message}); use ldaps:// instead")]
    StartTlsRefused {
        /// The DC.
        dc: String,
        /// The DC's answer.
        message: String,
    },
    /// The simple bind was rejected.
    #[error("bind to domain controller {dc} as {user} failed: {reason}")]
    BindFailed {
        /// The DC.
        dc: String,
        /// The account.
        user: String,
        /// AD's reason, explained where known (bad credentials, locked out, expired…).
        reason: String,
    },
    /// The object does not exist (on that DC).
    #[error("{what} not found on domain controller {dc}")]
    NotFound {
        /// The DC.
        dc: String,
        /// What we looked for.
        what: String,
    },
    /// The account lacks a right it needs.
    #[error("{user} may not {action} {dn} on domain controller {dc} (insufficient access rights: {hint})")]
    AccessDenied {
        /// The DC.
        dc: String,
        /// The account.
        user: String,
        /// What it tried.
        action: &'static str,
        /// The object.
        dn: String,
        /// What right is missing.
        hint: &'static str,
    },
    /// The DC refused a new password.
    #[error("domain controller {dc} refused the new password for {dn}: {message} (check the domain password policy)")]
    PasswordRejected {
        /// The DC.
        dc: String,
        /// The object.
        dn: String,
        /// The DC's answer.
        message: String,
    },
    /// The computer has a LAPS password (its non-confidential expiration time is set) but
    /// the reader was not given it: LAPS passwords are confidential attributes that AD
    /// silently leaves out for readers without the delegated right.
    #[error(
        "{reader} may not read the LAPS password of {computer} (domain controller {dc}): it is set but \
         confidential; delegate the read (Set-LapsADReadPasswordPermission / \
         Set-AdmPwdReadPasswordPermission) or use an account that has it"
    )]
    LapsAccessDenied {
        /// The computer's DN.
        computer: String,
        /// The reading account.
        reader: String,
        /// The DC.
        dc: String,
    },
    /// Only the DPAPI-NG encrypted Windows LAPS password is stored; decrypting it is not
    /// supported.
    #[error(
        "the LAPS password of {computer} is encrypted (msLAPS-EncryptedPassword, DPAPI-NG), which trustsweep \
         cannot decrypt; configure Windows LAPS to store it in clear text for this OU, or pass the password"
    )]
    LapsEncrypted {
        /// The computer's DN.
        computer: String,
    },
    /// Neither LAPS schema extension is present in the forest.
    #[error("LAPS is not deployed in the domain of {dc}: neither ms-Mcs-AdmPwd nor msLAPS-Password is in the schema")]
    LapsNotInSchema {
        /// The DC.
        dc: String,
    },
    /// The stored LAPS value is not what Windows LAPS writes.
    #[error("the LAPS value of {computer} cannot be read: {message}")]
    LapsMalformed {
        /// The computer's DN.
        computer: String,
        /// What is wrong.
        message: String,
    },
    /// Any other LDAP failure.
    #[error("LDAP {operation} on domain controller {dc} failed: {message}")]
    Ldap {
        /// The DC.
        dc: String,
        /// The operation.
        operation: &'static str,
        /// Result code and the DC's text.
        message: String,
    },
}
