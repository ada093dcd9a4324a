//! TLS end to end: certificates made with rcgen, clients from redis-rs (rustls), a bare
//! rustls client for protocol-level checks, and Debian's `redis-cli --tls` for interop.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, Server};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use redis::{ClientTlsConfig, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A certificate authority that signs server and client certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A PEM certificate and its key.
struct Pair {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    fn issue(&self, client: bool) -> Pair {
        let mut p = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "flowkv test");
        p.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Certificates for one test, written into a fresh directory.
struct Pki {
    dir: PathBuf,
    ca: Ca,
    client: Pair,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("flowkv-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca = Ca::new("flowkv test CA");
        let server = ca.issue(false);
        let client = ca.issue(true);
        let pki = Pki { dir, ca, client };
        pki.write("ca.crt", &pki.ca.pem());
        pki.write("server.crt", &server.cert);
        pki.write("server.key", &server.key);
        pki.write("client.crt", &pki.client.cert);
        pki.write("client.key", &pki.client.key);
        pki
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The directives of a TLS port with this PKI (client certificates required).
    fn args(&self, tls_port: u16) -> Vec<String> {
        let mut a = vec!["--tls-port".to_string(), tls_port.to_string()];
        for (d, f) in [
            ("--tls-cert-file", "server.crt"),
            ("--tls-key-file", "server.key"),
            ("--tls-ca-cert-file", "ca.crt"),
        ] {
            a.push(d.into());
            a.push(self.path(f));
        }
        a
    }

    /// A redis-rs connection over TLS that trusts this CA, with the client certificate.
    fn redis(&self, port: u16) -> redis::RedisResult<redis::Connection> {
        let certs = TlsCertificates {
            client_tls: Some(ClientTlsConfig {
                client_cert: self.client.cert.clone().into_bytes(),
                client_key: self.client.key.clone().into_bytes(),
            }),
            root_cert: Some(self.ca.pem().into_bytes()),
        };
        redis::Client::build_with_tls(format!("rediss://127.0.0.1:{port}/"), certs)?
            .get_connection_with_timeout(Duration::from_secs(5))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(pki: &Pki, tls_port: u16, extra: &[&str]) -> Server {
    let mut args = pki.args(tls_port);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&refs)
}

/// A bare rustls client: which protocol versions it offers, and which client certificate
/// (if any) it presents.
fn rustls_client(
    trust: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client: Option<&Pair>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(trust.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots);
    let config = match client {
        Some(p) => {
            let chain = vec![CertificateDer::from_pem_slice(p.cert.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(p.key.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Connects with `config` and runs PING: Ok(reply) or the error that stopped it.
fn tls_ping(port: u16, config: Arc<rustls::ClientConfig>) -> Result<String, String> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, sock);
    s.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn get(con: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(con)
        .unwrap();
    v[1].clone()
}

#[test]
fn commands_pipelines_pubsub_and_blocking_over_tls_beside_plain() {
    let pki = Pki::new("cmds");
    let tport = free_port();
    let srv = start(&pki, tport, &[]);
    let mut plain = srv.client();
    let mut con = pki.redis(tport).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut plain).unwrap();
    assert_eq!(v, "v", "TLS and plain clients share the keyspace");

    // A 1 MB value and 1000 pipelined commands both ways.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query(&mut con)
        .unwrap();
    let back: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert!(back == big, "1 MB value round-trips over TLS");
    let mut p = redis::pipe();
    for i in 0..1000 {
        p.cmd("SET").arg(format!("p{i}")).arg(&big[..1000]).ignore();
        p.cmd("INCR").arg("n");
    }
    let counts: Vec<i64> = p.query(&mut con).unwrap();
    assert_eq!(counts, (1..=1000).collect::<Vec<i64>>());
    let mut p = redis::pipe();
    for _ in 0..20 {
        p.cmd("GET").arg("big");
    }
    let bigs: Vec<Vec<u8>> = p.query(&mut con).unwrap();
    assert!(bigs.iter().all(|b| *b == big), "20 pipelined 1 MB replies");

    // CLIENT LIST shows both connections.
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");

    // Blocking pop over TLS, served by a plain client's push.
    let mut blocked = pki.redis(tport).unwrap();
    let waiter = std::thread::spawn(move || {
        let r: (String, String) = redis::cmd("BLPOP")
            .arg("q")
            .arg(5)
            .query(&mut blocked)
            .unwrap();
        r
    });
    std::thread::sleep(Duration::from_millis(200));
    let _: i64 = redis::cmd("RPUSH")
        .arg("q")
        .arg("job")
        .query(&mut plain)
        .unwrap();
    assert_eq!(waiter.join().unwrap(), ("q".into(), "job".into()));

    // Pub/sub: a TLS subscriber receives what a plain client publishes.
    let mut sub_con = pki.redis(tport).unwrap();
    let mut sub = sub_con.as_pubsub();
    sub.subscribe("news").unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut plain)
        .unwrap();
    assert_eq!(n, 1);
    let msg = sub.get_message().unwrap();
    assert_eq!(msg.get_channel_name(), "news");
    assert_eq!(msg.get_payload::<String>().unwrap(), "hello");
}

#[test]
fn monitor_over_tls() {
    let pki = Pki::new("monitor");
    let tport = free_port();
    let srv = start(&pki, tport, &[]);
    let mut mon = pki.redis(tport).unwrap();
    let _: () = redis::cmd("MONITOR").query(&mut mon).unwrap();
    let mut plain = srv.client();
    let _: () = redis::cmd("SET")
        .arg("watched")
        .arg("1")
        .query(&mut plain)
        .unwrap();
    // The plain client's own handshake (CLIENT SETINFO) comes first.
    let line = (0..5)
        .map(|_| redis::from_redis_value::<String>(&mon.recv_response().unwrap()).unwrap())
        .find(|l| l.contains("watched"))
        .unwrap();
    assert!(line.ends_with(r#""SET" "watched" "1""#), "{line}");
}

#[test]
fn redis_cli_over_tls() {
    if Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("redis-cli not installed: skipped");
        return;
    }
    let pki = Pki::new("cli");
    let tport = free_port();
    let _srv = start(&pki, tport, &[]);
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args([
                "--tls",
                "--cacert",
                &pki.path("ca.crt"),
                "--cert",
                &pki.path("client.crt"),
            ])
            .args(["--key", &pki.path("client.key"), "-p", &tport.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "cli", "yes"]), "OK");
    assert_eq!(cli(&["GET", "cli"]), "yes");
    assert_eq!(cli(&["PING"]), "PONG");
}

#[test]
fn client_certificate_modes() {
    let pki = Pki::new("auth");
    let other = Ca::new("another CA");
    let stranger = other.issue(true);
    let tport = free_port();
    let srv = start(&pki, tport, &[]);
    let mut plain = srv.client();
    let ca = pki.ca.pem();
    let ping = |client: Option<&Pair>| tls_ping(tport, rustls_client(&ca, BOTH, client));

    // Default `yes`: a certificate from the CA is required.
    assert_eq!(get(&mut plain, "tls-auth-clients"), "yes");
    assert_eq!(ping(Some(&pki.client)).unwrap(), "+PONG\r\n");
    assert!(ping(None).is_err(), "no client certificate is refused");
    assert!(
        ping(Some(&stranger)).is_err(),
        "a certificate from another CA is refused"
    );

    // `optional`: no certificate is fine, a bad one is still refused.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-auth-clients")
        .arg("optional")
        .query(&mut plain)
        .unwrap();
    assert_eq!(ping(None).unwrap(), "+PONG\r\n");
    assert_eq!(ping(Some(&pki.client)).unwrap(), "+PONG\r\n");
    assert!(ping(Some(&stranger)).is_err());

    // `no`: certificates are not asked for.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-auth-clients")
        .arg("no")
        .query(&mut plain)
        .unwrap();
    assert_eq!(ping(None).unwrap(), "+PONG\r\n");

    // A client that doesn't trust the server's CA gives up by itself.
    let wrong_trust = tls_ping(tport, rustls_client(&other.pem(), BOTH, None));
    assert!(wrong_trust.unwrap_err().contains("UnknownIssuer"));
}

#[test]
fn plain_text_client_on_tls_port_is_refused() {
    let pki = Pki::new("plain");
    let tport = free_port();
    let srv = start(&pki, tport, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", tport)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let mut got = Vec::new();
    // The server answers with at most a TLS alert, then closes.
    let _ = s.read_to_end(&mut got);
    assert!(!got.starts_with(b"+PONG"), "{got:?}");
    // A client that connects and says nothing is not served either, and harms nobody.
    let _idle = TcpStream::connect(("127.0.0.1", tport)).unwrap();
    let mut con = pki.redis(tport).unwrap();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    let pong: String = redis::cmd("PING").query(&mut srv.client()).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn protocol_versions_and_ciphers() {
    let pki = Pki::new("proto");
    let tport = free_port();
    let srv = start(&pki, tport, &["--tls-protocols", "TLSv1.3"]);
    let ca = pki.ca.pem();
    let only12 = rustls_client(&ca, &[&rustls::version::TLS12], Some(&pki.client));
    let only13 = rustls_client(&ca, &[&rustls::version::TLS13], Some(&pki.client));
    assert!(
        tls_ping(tport, only12.clone()).is_err(),
        "TLSv1.2 refused under TLSv1.3 only"
    );
    assert_eq!(tls_ping(tport, only13.clone()).unwrap(), "+PONG\r\n");

    let mut plain = srv.client();
    let set = |con: &mut redis::Connection, name: &str, value: &str| -> redis::RedisResult<()> {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query(con)
    };
    set(&mut plain, "tls-protocols", "TLSv1.2").unwrap();
    assert_eq!(tls_ping(tport, only12.clone()).unwrap(), "+PONG\r\n");
    assert!(tls_ping(tport, only13).is_err());

    // TLS 1.2 ciphers by OpenSSL name; an ECDSA-only list works with the ECDSA test key.
    set(&mut plain, "tls-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256").unwrap();
    assert_eq!(tls_ping(tport, only12.clone()).unwrap(), "+PONG\r\n");
    set(&mut plain, "tls-ciphers", "ECDHE-RSA-AES128-GCM-SHA256").unwrap();
    assert!(tls_ping(tport, only12).is_err(), "no common cipher");
    let err = set(&mut plain, "tls-ciphers", "AES128-SHA").unwrap_err();
    assert_eq!(
        err.to_string(),
        "An error was signalled by the server - ResponseError: CONFIG SET failed (possibly \
         related to argument 'tls-ciphers') - Unable to update TLS configuration. Check server logs."
    );
    let err = set(&mut plain, "tls-ciphersuites", "TLS_AES_128_CCM_SHA256").unwrap_err();
    assert!(err.to_string().contains("tls-ciphersuites"));
    assert!(set(&mut plain, "tls-protocols", "SSLv3").is_err());
    set(&mut plain, "tls-protocols", "TLSv1.2 TLSv1.3").unwrap();
    set(
        &mut plain,
        "tls-ciphersuites",
        "TLS_CHACHA20_POLY1305_SHA256",
    )
    .unwrap();
    set(&mut plain, "tls-prefer-server-ciphers", "yes").unwrap();
    assert_eq!(
        get(&mut plain, "tls-ciphers"),
        "ECDHE-RSA-AES128-GCM-SHA256"
    );
    assert_eq!(
        tls_ping(tport, rustls_client(&ca, BOTH, Some(&pki.client))).unwrap(),
        "+PONG\r\n"
    );
}

#[test]
fn config_set_reloads_certificates() {
    let pki = Pki::new("reload");
    let tport = free_port();
    let srv = start(&pki, tport, &[]);
    let mut plain = srv.client();
    let set = |con: &mut redis::Connection, pairs: &[(&str, &str)]| -> redis::RedisResult<()> {
        let mut c = redis::cmd("CONFIG");
        c.arg("SET");
        for (n, v) in pairs {
            c.arg(*n).arg(*v);
        }
        c.query(con)
    };
    let old_cert = pki.path("server.crt");

    // A missing file or a key that doesn't match is refused; the old files stay in use.
    let err = set(&mut plain, &[("tls-cert-file", "/nonexistent/server.crt")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("Unable to update TLS configuration"),
        "{err}"
    );
    let new_ca = Ca::new("rotated CA");
    let new_server = new_ca.issue(false);
    let new_cert = pki.write("new.crt", &new_server.cert);
    let new_key = pki.write("new.key", &new_server.key);
    let err = set(&mut plain, &[("tls-cert-file", &new_cert)]).unwrap_err();
    assert!(
        err.to_string().contains("argument 'tls-cert-file'"),
        "{err}"
    );
    assert_eq!(get(&mut plain, "tls-cert-file"), old_cert);
    let mut kept = pki.redis(tport).unwrap();
    assert_eq!(
        redis::cmd("PING").query::<String>(&mut kept).unwrap(),
        "PONG"
    );

    // Certificate and key together: new connections get the new certificate.
    set(
        &mut plain,
        &[("tls-cert-file", &new_cert), ("tls-key-file", &new_key)],
    )
    .unwrap();
    let trust_new = rustls_client(&new_ca.pem(), BOTH, Some(&pki.client));
    let trust_old = rustls_client(&pki.ca.pem(), BOTH, Some(&pki.client));
    assert_eq!(tls_ping(tport, trust_new).unwrap(), "+PONG\r\n");
    assert!(tls_ping(tport, trust_old).is_err());
    // Connections made before the reload carry on.
    assert_eq!(
        redis::cmd("PING").query::<String>(&mut kept).unwrap(),
        "PONG"
    );
    // tls-port is set at start-up.
    assert!(set(&mut plain, &[("tls-port", "0")]).is_err());
}

/// Runs the server until it is ready or exits; returns (exit status if it exited, stderr).
fn run_to_exit(args: &[String]) -> (Option<std::process::ExitStatus>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowkv-server"))
        .args(["--bind", "127.0.0.1", "--save", ""])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (Some(status), err);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    (None, String::new())
}

#[test]
fn start_up_errors() {
    let pki = Pki::new("startup");
    let tport = free_port();
    let with = |extra: &[&str]| {
        let mut a = pki.args(tport);
        a.extend(["--port".to_string(), free_port().to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let (status, err) = run_to_exit(&with(&["--tls-cert-file", "/nonexistent.crt"]));
    assert!(!status.unwrap().success());
    assert!(
        err.contains("Failed to load certificate: /nonexistent.crt: No such file or directory"),
        "{err}"
    );
    assert!(
        err.contains("Failed to configure TLS. Check logs for more info."),
        "{err}"
    );

    let other_key = pki.write("other.key", &KeyPair::generate().unwrap().serialize_pem());
    let (status, err) = run_to_exit(&with(&["--tls-key-file", &other_key]));
    assert!(!status.unwrap().success());
    assert!(err.contains("Failed to load private key"), "{err}");

    let (status, err) = run_to_exit(&with(&["--tls-ca-cert-file", ""]));
    assert!(!status.unwrap().success());
    assert!(
        err.contains("Either tls-ca-cert-file or tls-ca-cert-dir must be specified"),
        "{err}"
    );

    let (status, err) = run_to_exit(&with(&["--tls-ciphers", "RC4-MD5"]));
    assert!(!status.unwrap().success());
    assert!(err.contains("unknown TLSv1.2 cipher 'RC4-MD5'"), "{err}");

    let (status, err) = run_to_exit(&["--port".into(), "0".into()]);
    assert!(!status.unwrap().success());
    assert!(err.contains("Configured to not listen anywhere"), "{err}");
}

/// Waits until a TLS PING on `port` succeeds.
fn wait_tls(port: u16, config: &Arc<rustls::ClientConfig>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if tls_ping(port, config.clone()).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    false
}

#[test]
fn tls_only_with_encrypted_key_and_ca_dir() {
    let pki = Pki::new("only");
    // The server key as encrypted PKCS#8 (PBKDF2-SHA256 + AES-256-CBC, as `openssl pkcs8
    // -topk8` writes it).
    let server_key = std::fs::read_to_string(pki.path("server.key")).unwrap();
    let der = pkcs8::der::Document::from_pem(&server_key).unwrap().1;
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_bytes()).unwrap();
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7; 16])
            .unwrap();
    let enc = info.encrypt_with_params(params, "s3cret").unwrap();
    let enc_pem = enc
        .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .unwrap();
    let enc_key = pki.write("server.enc.key", &enc_pem);
    let ca_dir = pki.dir.join("cas");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::write(ca_dir.join("ours.pem"), pki.ca.pem()).unwrap();
    std::fs::write(ca_dir.join("README"), "not a certificate").unwrap();

    let tport = free_port();
    let args = |pass: &str| -> Vec<String> {
        [
            "--port",
            "0",
            "--tls-port",
            &tport.to_string(),
            "--tls-cert-file",
            &pki.path("server.crt"),
            "--tls-key-file",
            &enc_key,
            "--tls-key-file-pass",
            pass,
            "--tls-ca-cert-dir",
            &ca_dir.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let (status, err) = run_to_exit(&args("wrong"));
    assert!(!status.unwrap().success());
    assert!(err.contains("wrong tls-key-file-pass"), "{err}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_flowkv-server"))
        .args(["--bind", "127.0.0.1", "--save", ""])
        .args(args("s3cret"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let config = rustls_client(&pki.ca.pem(), BOTH, Some(&pki.client));
    let ok = wait_tls(tport, &config);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "TLS-only server with an encrypted key answers");
}
