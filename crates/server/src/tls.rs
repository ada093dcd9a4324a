//! TLS for client connections, with rustls (ring provider).
//!
//! The `tls-*` directives are turned into one [`ServerConfig`] when the server starts with a
//! `tls-port`, and rebuilt by CONFIG SET of any `tls-*` directive: a build that fails (missing
//! file, key that doesn't match the certificate, unknown cipher…) refuses the CONFIG SET and
//! keeps the previous configuration, as Redis does. Connections already open keep the
//! configuration they were accepted with; new ones use the latest.
//!
//! [`Session`] wraps one server-side TLS connection for the worker's event loop: reads and
//! writes never block, and the handshake advances as a side effect of them.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto::ring::default_provider;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{
    CipherSuite, RootCertStore, ServerConfig, ServerConnection, SupportedProtocolVersion,
};

use crate::config::Config;

/// TLS 1.3 suites rustls offers, by the names `tls-ciphersuites` uses (OpenSSL's = IANA's).
const TLS13_SUITES: &[(&str, CipherSuite)] = &[
    (
        "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
];

/// TLS 1.2 suites rustls offers, by the OpenSSL names `tls-ciphers` uses.
const TLS12_SUITES: &[(&str, CipherSuite)] = &[
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// OpenSSL cipher-list keywords that select every suite rustls offers.
const ALL_KEYWORDS: &[&str] = &["DEFAULT", "ALL", "HIGH"];

/// Session cache entries when `tls-session-cache-size` is 0 (OpenSSL's "no limit"; rustls
/// needs a bound).
const UNBOUNDED_CACHE_SIZE: usize = 20 * 1024;

/// True for the directives a TLS configuration is built from: CONFIG SET of one of them
/// rebuilds it.
pub fn is_tls_directive(name: &str) -> bool {
    name.starts_with("tls-") && name != "tls-port"
}

/// The TLS configuration new connections are accepted with (none until TLS is configured).
#[derive(Default)]
pub struct Tls {
    current: RwLock<Option<Arc<ServerConfig>>>,
}

impl Tls {
    /// Builds the configuration from the directive values `get` returns and installs it for
    /// new connections. On error nothing changes; the error is the line Redis would log.
    pub fn configure(&self, get: &dyn Fn(&str) -> String) -> Result<(), String> {
        let config = build(get)?;
        *self.current.write() = Some(Arc::new(config));
        Ok(())
    }

    /// A new server-side session for an accepted TLS connection (None if TLS is not
    /// configured, which start-up prevents when a TLS port is open).
    pub fn accept(&self) -> Option<Session> {
        let config = self.current.read().clone()?;
        ServerConnection::new(config).ok().map(Session)
    }
}

/// Configures TLS before the TLS port opens; a configuration that doesn't build stops
/// start-up, with the reason and then Redis's message.
pub fn configure_at_startup(config: &Config) -> io::Result<()> {
    config
        .tls
        .configure(&|name| config.get(name).unwrap_or_default())
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{e}\nFailed to configure TLS. Check logs for more info."),
            )
        })
}

/// Builds a rustls server configuration from the `tls-*` directives, checking what Redis
/// checks (in its order) and what rustls cannot do.
fn build(get: &dyn Fn(&str) -> String) -> Result<ServerConfig, String> {
    let cert_file = get("tls-cert-file");
    let key_file = get("tls-key-file");
    let ca_file = get("tls-ca-cert-file");
    let ca_dir = get("tls-ca-cert-dir");
    let auth = get("tls-auth-clients");
    if cert_file.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    if key_file.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    if auth != "no" && ca_file.is_empty() && ca_dir.is_empty() {
        return Err(
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when \
                    tls-cluster, tls-replication or tls-auth-clients are enabled!"
                .into(),
        );
    }
    let versions = parse_protocols(&get("tls-protocols"))?;
    let mut provider = default_provider();
    provider.cipher_suites =
        select_suites(&provider, &get("tls-ciphersuites"), &get("tls-ciphers"))?;
    let provider = Arc::new(provider);
    let certs = load_certs(Path::new(&cert_file))
        .map_err(|e| format!("Failed to load certificate: {cert_file}: {e}"))?;
    let key = load_key(Path::new(&key_file), &get("tls-key-file-pass"))
        .map_err(|e| format!("Failed to load private key: {key_file}: {e}"))?;
    let verifier = if ca_file.is_empty() && ca_dir.is_empty() {
        WebPkiClientVerifier::no_client_auth()
    } else {
        let roots = load_roots(&ca_file, &ca_dir)
            .map_err(|e| format!("Failed to configure CA certificate(s) file/directory: {e}"))?;
        match auth.as_str() {
            "no" => WebPkiClientVerifier::no_client_auth(),
            mode => {
                let builder =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let builder = if mode == "optional" {
                    builder.allow_unauthenticated()
                } else {
                    builder
                };
                builder
                    .build()
                    .map_err(|e| format!("Failed to configure client verification: {e}"))?
            }
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Failed to configure TLS protocols: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("Failed to load private key: {key_file}: {e}"))?;
    config.ignore_client_order = get("tls-prefer-server-ciphers") == "yes";
    if get("tls-session-caching") == "yes" {
        let size = match get("tls-session-cache-size").parse::<usize>() {
            Ok(0) | Err(_) => UNBOUNDED_CACHE_SIZE,
            Ok(n) => n,
        };
        config.session_storage = ServerSessionMemoryCache::new(size);
    } else {
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(config)
}

/// `tls-protocols`: space-separated TLSv1 / TLSv1.1 / TLSv1.2 / TLSv1.3 (any case); empty
/// means TLSv1.2 and TLSv1.3, as in Redis. rustls has no TLS 1.0/1.1: they are accepted
/// (an old config still loads) but only the 1.2/1.3 part of the set is offered.
fn parse_protocols(value: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    if value.is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut versions = Vec::new();
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1" | "tlsv1.1" => {}
            "tlsv1.2" => versions.push(&rustls::version::TLS12),
            "tlsv1.3" => versions.push(&rustls::version::TLS13),
            _ => {
                return Err(
                    "Invalid tls-protocols specified. Use a combination of 'TLSv1', \
                            'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'."
                        .into(),
                )
            }
        }
    }
    if versions.is_empty() {
        return Err(format!(
            "tls-protocols '{value}': flowkv supports only TLSv1.2 and TLSv1.3"
        ));
    }
    versions.dedup();
    Ok(versions)
}

/// The provider's suites allowed by `tls-ciphersuites` (TLS 1.3, colon-separated names) and
/// `tls-ciphers` (TLS 1.2, an OpenSSL cipher list), in the configured order (the server's
/// preference under `tls-prefer-server-ciphers`). Empty settings keep rustls's defaults.
fn select_suites(
    provider: &CryptoProvider,
    tls13: &str,
    tls12: &str,
) -> Result<Vec<rustls::SupportedCipherSuite>, String> {
    let mut wanted = Vec::new();
    if tls13.is_empty() {
        wanted.extend(TLS13_SUITES.iter().map(|&(_, s)| s));
    } else {
        for name in tls13.split(':').filter(|n| !n.is_empty()) {
            let suite = TLS13_SUITES
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| {
                    format!(
                        "Failed to configure ciphersuites: {tls13}: unknown TLSv1.3 ciphersuite \
                     '{name}' (supported: {})",
                        names(TLS13_SUITES)
                    )
                })?;
            wanted.push(suite.1);
        }
    }
    let v12 = parse_cipher_list(tls12).map_err(|name| {
        format!(
            "Failed to configure ciphers: {tls12}: unknown TLSv1.2 cipher '{name}' \
             (supported: {}, DEFAULT, HIGH, ALL)",
            names(TLS12_SUITES)
        )
    })?;
    if v12.is_empty() {
        return Err(format!(
            "Failed to configure ciphers: {tls12}: no cipher match"
        ));
    }
    wanted.extend(v12);
    Ok(wanted
        .iter()
        .filter_map(|w| provider.cipher_suites.iter().find(|s| s.suite() == *w))
        .copied()
        .collect())
}

/// An OpenSSL cipher list as far as rustls can follow it: suite names, the keywords that
/// mean "everything" (DEFAULT, HIGH, ALL), `!name` / `-name` exclusions (excluding
/// something rustls never offers, such as `!aNULL` or `!MD5`, changes nothing), and
/// `@STRENGTH`-style directives (ignored). Separators are `:`, `,` and spaces. An unknown
/// suite name is returned as the error.
fn parse_cipher_list(list: &str) -> Result<Vec<CipherSuite>, String> {
    if list.is_empty() {
        return Ok(TLS12_SUITES.iter().map(|&(_, s)| s).collect());
    }
    let mut out: Vec<CipherSuite> = Vec::new();
    let mut excluded: Vec<CipherSuite> = Vec::new();
    for tok in list.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        if tok.starts_with('@') {
            continue;
        }
        if let Some(name) = tok.strip_prefix(['!', '-']) {
            if let Some(&(_, s)) = TLS12_SUITES.iter().find(|(n, _)| *n == name) {
                out.retain(|x| *x != s);
                if tok.starts_with('!') {
                    excluded.push(s);
                }
            }
            continue;
        }
        let add: Vec<CipherSuite> = if ALL_KEYWORDS.contains(&tok) {
            TLS12_SUITES.iter().map(|&(_, s)| s).collect()
        } else {
            match TLS12_SUITES.iter().find(|(n, _)| *n == tok) {
                Some(&(_, s)) => vec![s],
                None => return Err(tok.to_string()),
            }
        };
        for s in add {
            if !out.contains(&s) && !excluded.contains(&s) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

fn names(table: &[(&str, CipherSuite)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// A PEM certificate chain (leaf first), as `SSL_CTX_use_certificate_chain_file` reads it.
fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err("no certificate found in the file".into());
    }
    Ok(certs)
}

/// A PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC); with `pass`, also an encrypted
/// PKCS#8 key ("ENCRYPTED PRIVATE KEY", as `openssl pkcs8 -topk8` writes it).
fn load_key(path: &Path, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| os_error(&e))?;
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    if let Some(start) = text.find(BEGIN) {
        if pass.is_empty() {
            return Err("the key is encrypted: set tls-key-file-pass".into());
        }
        let end = text[start..]
            .find(END)
            .map(|i| start + i + END.len())
            .ok_or("unterminated ENCRYPTED PRIVATE KEY block")?;
        let (_, doc) = pkcs8::der::Document::from_pem(&text[start..end])
            .map_err(|e| format!("bad ENCRYPTED PRIVATE KEY block: {e}"))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|e| format!("bad ENCRYPTED PRIVATE KEY block: {e}"))?;
        let plain = info
            .decrypt(pass.as_bytes())
            .map_err(|_| "bad decrypt (wrong tls-key-file-pass?)".to_string())?;
        return Ok(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec()).into());
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(
            "legacy OpenSSL-encrypted keys are not supported; convert the key to \
                    encrypted PKCS#8 with `openssl pkcs8 -topk8`"
                .into(),
        );
    }
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(pem_error)
}

/// The trust anchors for client certificates: every certificate of `tls-ca-cert-file`, and
/// of each PEM file in `tls-ca-cert-dir` (files holding no certificate are skipped).
fn load_roots(file: &str, dir: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let mut add = |path: &Path, must: bool| -> Result<(), String> {
        let certs = match load_certs(path) {
            Ok(c) => c,
            Err(_) if !must => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    };
    if !file.is_empty() {
        add(Path::new(file), true)?;
    }
    if !dir.is_empty() {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{dir}: {}", os_error(&e)))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for p in paths {
            add(&p, false)?;
        }
    }
    if roots.is_empty() {
        return Err("no CA certificate found".into());
    }
    Ok(roots)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => os_error(&e),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of that kind found".into(),
        e => format!("{e:?}"),
    }
}

fn os_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "No such file or directory".into(),
        io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => e.to_string(),
    }
}

/// One server-side TLS session over a non-blocking socket.
pub struct Session(ServerConnection);

impl Session {
    /// Reads plaintext into `buf`. Returns WouldBlock only when the session holds no
    /// decrypted data *and* the socket is drained, so a caller that reads until WouldBlock
    /// never leaves data inside the session without a readiness event to fetch it. Ok(0)
    /// is the end of the stream. A TLS error (a bad handshake, a plain-text client on the
    /// TLS port) queues an alert for [`Session::flush`] and fails the read.
    pub fn read(&mut self, sock: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.0.read_tls(sock)? == 0 {
                return Ok(0);
            }
            if let Err(e) = self.0.process_new_packets() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }

    /// Encrypts as much of `data` as the session buffers and sends what the socket takes.
    /// WouldBlock means nothing could be taken: wait for the socket to be writable.
    pub fn write(&mut self, sock: &mut impl Write, data: &[u8]) -> io::Result<usize> {
        // A full session buffer takes nothing: drain it to the socket and try once more.
        // Before the handshake ends the buffer cannot drain; the next read event finishes
        // the handshake and flushes again.
        for _ in 0..2 {
            let n = self.0.writer().write(data)?;
            match self.flush(sock) {
                Ok(()) if n == 0 => continue,
                Ok(()) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => return Ok(n),
                Err(e) => return Err(e),
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Sends the session's pending TLS records (handshake messages, alerts, encrypted
    /// replies). WouldBlock means some are still pending.
    pub fn flush(&mut self, sock: &mut impl Write) -> io::Result<()> {
        while self.0.wants_write() {
            if self.0.write_tls(sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// True while encrypted output waits for the socket.
    pub fn pending(&self) -> bool {
        self.0.wants_write()
    }

    /// Sends close_notify, best effort, before the connection is dropped.
    pub fn close(&mut self, sock: &mut impl Write) {
        self.0.send_close_notify();
        let _ = self.flush(sock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert_eq!(parse_protocols("").unwrap().len(), 2);
        assert_eq!(
            parse_protocols("TLSv1.3").unwrap(),
            vec![&rustls::version::TLS13]
        );
        assert_eq!(
            parse_protocols("tlsv1 TLSv1.2").unwrap(),
            vec![&rustls::version::TLS12]
        );
        assert!(parse_protocols("TLSv1.1")
            .unwrap_err()
            .contains("only TLSv1.2"));
        assert!(parse_protocols("SSLv3")
            .unwrap_err()
            .starts_with("Invalid tls-protocols"));
    }

    #[test]
    fn cipher_lists() {
        use CipherSuite::*;
        assert_eq!(parse_cipher_list("").unwrap().len(), TLS12_SUITES.len());
        assert_eq!(
            parse_cipher_list("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384").unwrap(),
            vec![
                TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            ]
        );
        let high = parse_cipher_list("HIGH:!aNULL:!MD5:!ECDHE-RSA-CHACHA20-POLY1305").unwrap();
        assert_eq!(high.len(), TLS12_SUITES.len() - 1);
        assert!(!high.contains(&TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256));
        assert_eq!(parse_cipher_list("AES128-SHA").unwrap_err(), "AES128-SHA");
        let p = default_provider();
        assert!(select_suites(&p, "TLS_AES_128_CCM_SHA256", "")
            .unwrap_err()
            .contains("unknown TLSv1.3 ciphersuite 'TLS_AES_128_CCM_SHA256'"));
        let s = select_suites(&p, "TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES256-GCM-SHA384").unwrap();
        let got: Vec<_> = s.iter().map(|s| s.suite()).collect();
        assert_eq!(
            got,
            vec![
                TLS13_AES_128_GCM_SHA256,
                TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            ]
        );
        assert!(select_suites(&p, "", "!ALL")
            .unwrap_err()
            .contains("no cipher match"));
    }
}
