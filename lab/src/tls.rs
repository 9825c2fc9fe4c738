//! The lab's PKI for its HTTPS listeners (Windows' 5986 listener): one CA generated at
//! start, and per member host a certificate for its DNS name, its inventory name and its
//! loopback address, signed by that CA, as an enterprise CA's WinRM template would issue.
//! Clients trust the CA through the inventory's `ansible_winrm_ca_trust_path`.

use std::net::IpAddr;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use winrm::server::{TlsListener, TlsListenerError};

/// Why the lab's certificates could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// rcgen refused the parameters.
    #[error("cannot generate the lab's certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// The listener refused the certificate.
    #[error("cannot set up a TLS listener: {0}")]
    Listener(#[from] TlsListenerError),
}

/// The lab's certificate authority.
pub struct LabCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl std::fmt::Debug for LabCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabCa").finish_non_exhaustive()
    }
}

impl LabCa {
    /// A fresh CA named after the lab's domain.
    pub fn generate(domain: &str) -> Result<Self, PkiError> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("trustsweep lab CA ({domain})"),
        );
        let cert = params.self_signed(&key)?;
        Ok(LabCa { key, cert })
    }

    /// The CA certificate in PEM, for `ansible_winrm_ca_trust_path`.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A TLS listener for a host reachable as `names` (DNS names) and `ip`.
    pub fn listener(&self, names: &[&str], ip: IpAddr) -> Result<TlsListener, PkiError> {
        let mut sans: Vec<String> = Vec::with_capacity(names.len() + 1);
        for n in names {
            if !n.is_empty() && !sans.iter().any(|s| s.eq_ignore_ascii_case(n)) {
                sans.push((*n).to_string());
            }
        }
        sans.push(ip.to_string());
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(sans)?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(TlsListener::new(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?)
    }
}
