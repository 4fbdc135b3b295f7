//! `proto tcpcl gen-certs`: a throw-away CA and certificates carrying TCPCL node IDs
//! (NODE-ID), DNS names and IP addresses, for TLS tests and examples.

use super::args::GenCertsArgs;
use anyhow::{bail, Context, Result};
use proto_net::tcpcl::tls::certgen::{CertFactory, LeafSpec};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// `dtn://rx/` -> `rx`, `ipn:2.0` -> `ipn-2.0`.
fn file_stem(node_id: &str) -> String {
    let rest = node_id
        .strip_prefix("dtn://")
        .map_or_else(|| node_id.to_string(), str::to_string);
    let mut s: String = rest
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "node".into()
    } else {
        s
    }
}

pub(super) fn gen_certs(a: &GenCertsArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut stems: Vec<String> = Vec::new();
    for n in &a.node_id {
        if !n.contains(':') {
            bail!("{n:?} is not a node ID URI (e.g. dtn://node/ or ipn:1.0)");
        }
        let stem = file_stem(n);
        if stems.contains(&stem) {
            bail!("two node IDs map to the same file name {stem}.pem");
        }
        stems.push(stem);
    }
    let mut files = vec![a.out.join("ca.pem")];
    for s in &stems {
        files.push(a.out.join(format!("{s}.pem")));
        files.push(a.out.join(format!("{s}.key")));
    }
    if !a.force {
        if let Some(f) = files.iter().find(|f| f.exists()) {
            bail!("{} exists (use --force to overwrite)", f.display());
        }
    }
    // A distinct name per CA, so certificates of another generated CA fail as
    // "unknown issuer" rather than with a signature error.
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let ca = CertFactory::new_ca(&format!("proto tcpcl gen-certs CA {stamp:x}"))?;
    write_file(&a.out.join("ca.pem"), ca.ca_pem(), false)?;
    println!(
        "{}  CA certificate (--tls-ca)",
        a.out.join("ca.pem").display()
    );
    let now = SystemTime::now();
    for (node, stem) in a.node_id.iter().zip(&stems) {
        let spec = LeafSpec {
            dns_names: a.dns.clone(),
            ip_addrs: a.ip.clone(),
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(a.days.saturating_mul(86_400)),
            ..LeafSpec::node(node)
        };
        let (cert, key) = ca.issue(&spec)?;
        let (cp, kp) = (
            a.out.join(format!("{stem}.pem")),
            a.out.join(format!("{stem}.key")),
        );
        write_file(&cp, &cert, false)?;
        write_file(&kp, &key, true)?;
        println!("{}  certificate for {node} (--tls-cert)", cp.display());
        println!("{}  its private key (--tls-key)", kp.display());
    }
    Ok(())
}

fn write_file(path: &Path, text: &str, private: bool) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_name_files_after_node_ids() {
        assert_eq!(file_stem("dtn://rx/"), "rx");
        assert_eq!(file_stem("dtn://node-a/inbox"), "node-a-inbox");
        assert_eq!(file_stem("ipn:2.0"), "ipn-2.0");
    }
}
