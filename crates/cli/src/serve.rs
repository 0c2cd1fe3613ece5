//! `tessera serve`: run the key broker (tessera-server) with flags over an optional TOML file.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use tessera_server::ServerConfig;
use tessera_server::config::TlsFiles;

/// The environment variable holding the log filter (`RUST_LOG` syntax).
pub(crate) const LOG_ENV: &str = "TESSERA_LOG";

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// A TOML configuration file (production); the flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The listening address, an IP address and a port (default 127.0.0.1:8080; port 0 picks
    /// a free port; a host name such as localhost is not taken: write 127.0.0.1 or [::1]).
    #[arg(long, value_name = "IP:PORT", value_parser = parse_listen)]
    listen: Option<SocketAddr>,
    /// The data directory: SQLite store, KEK, token signing key, admin token (default
    /// $XDG_DATA_HOME/tessera or ~/.local/share/tessera).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback (behind a TLS-terminating proxy only).
    #[arg(long)]
    insecure_http: bool,
    /// The TLS certificate chain (PEM, leaf first); with --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM); with --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How often the TLS files are read again, in seconds (0: at start only; at most 86400;
    /// default 60). Applies to --tls-cert/--tls-key or the configuration's [tls].
    #[arg(long, value_name = "SECS")]
    tls_reload_secs: Option<u64>,
    /// DANGEROUS: also trust this root (an ARK or a TDX root CA, PEM/DER) besides the vendor
    /// roots: simulator roots, for development only. Repeatable.
    #[arg(long = "dangerous-test-root", value_name = "FILE")]
    dangerous_test_roots: Vec<PathBuf>,
    /// A directory of endorsements (VCEKs, CRLs, TDX collateral bundles) read at start.
    /// Repeatable.
    #[arg(long = "endorsements", value_name = "DIR")]
    endorsements: Vec<PathBuf>,
}

/// The default data directory: `$XDG_DATA_HOME/tessera`, else `$HOME/.local/share/tessera`.
pub(crate) fn default_data_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| {
        let p = PathBuf::from(v);
        p.is_absolute().then_some(p)
    };
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").and_then(absolute) {
        return Some(xdg.join("tessera"));
    }
    std::env::var_os("HOME")
        .and_then(absolute)
        .map(|home| home.join(".local").join("share").join("tessera"))
}

fn data_dir_or_default(flag: Option<&Path>) -> Result<PathBuf> {
    match flag {
        Some(dir) => std::path::absolute(dir).with_context(|| format!("{}", dir.display())),
        None => default_data_dir()
            .context("no data directory: set XDG_DATA_HOME or HOME, or give --data-dir DIR"),
    }
}

/// Reads the configuration file; a file without `data_dir` takes `--data-dir` or the default.
fn load_config(path: &Path, data_dir: Option<&Path>) -> Result<ServerConfig> {
    let mut no_default = None;
    let config = ServerConfig::load_with_data_dir(path, || {
        data_dir_or_default(data_dir)
            .map_err(|e| no_default = Some(e))
            .ok()
    });
    if let Some(e) = no_default {
        return Err(e);
    }
    Ok(config?)
}

/// The configuration: the file (if any), then the flags over it.
fn configure(args: &ServeArgs) -> Result<ServerConfig> {
    let mut config = match &args.config {
        Some(path) => load_config(path, args.data_dir.as_deref())?,
        None => ServerConfig::with_data_dir(data_dir_or_default(args.data_dir.as_deref())?),
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = std::path::absolute(dir).with_context(|| format!("{}", dir.display()))?;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.insecure_http {
        config.insecure_http = true;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let mut files = TlsFiles::new(cert.clone(), key.clone());
        if let Some(configured) = &config.tls {
            files.reload_secs = configured.reload_secs;
        }
        config.tls = Some(files);
    }
    if let Some(secs) = args.tls_reload_secs {
        match &mut config.tls {
            Some(tls) => tls.reload_secs = secs,
            None => anyhow::bail!(
                "--tls-reload-secs without TLS: give --tls-cert and --tls-key, or [tls] in the \
                 configuration"
            ),
        }
    }
    config
        .verifier
        .dangerous_test_roots
        .extend(args.dangerous_test_roots.iter().cloned());
    config
        .verifier
        .endorsements
        .extend(args.endorsements.iter().cloned());
    config.validate()?;
    Ok(config)
}

/// Logs to stderr, filtered by `TESSERA_LOG` (default `info`).
fn init_logging() -> Result<()> {
    let filter = match std::env::var(LOG_ENV) {
        Ok(spec) => tracing_subscriber::EnvFilter::try_new(&spec)
            .with_context(|| format!("{LOG_ENV}={spec:?}: not a log filter"))?,
        Err(_) => tracing_subscriber::EnvFilter::new("info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))
}

/// The banner a `--dangerous-test-root` start prints, so nobody misses it.
fn warn_dangerous(roots: &[PathBuf]) {
    eprintln!("{}", "!".repeat(78));
    eprintln!("!! DANGER: trusting test roots besides AMD's and Intel's:");
    for root in roots {
        eprintln!("!!   {}", root.display());
    }
    eprintln!("!! Evidence signed by a simulator is accepted. Never use this in production.");
    eprintln!("{}", "!".repeat(78));
}

/// SIGINT and SIGTERM, caught from the moment this is made: made before the broker says it
/// is listening, so that a stop sent as soon as it is (an orchestrator's, a test's) drains the
/// server instead of killing the process with the default action.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("catching SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("catching SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
    })
}

/// Ctrl-C, where there are no Unix signals.
#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

pub(crate) fn run(args: &ServeArgs) -> Result<ExitCode> {
    let config = configure(args)?;
    init_logging()?;
    if !config.verifier.dangerous_test_roots.is_empty() {
        warn_dangerous(&config.verifier.dangerous_test_roots);
    }
    // Accepts connections and purges the store, and serves the connections with PostgreSQL;
    // with SQLite the server starts its own threads for them (`connection_threads`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async {
        let (server, info) = tessera_server::start(&config).await?;
        let stop = shutdown_signal()?;
        let addr = server.local_addr().context("the bound address")?;
        let scheme = if server.is_tls() { "https" } else { "http" };
        eprintln!(
            "tessera serve: data directory {}",
            config.data_dir.display()
        );
        if let Some(path) = &info.admin_token_file {
            eprintln!("tessera serve: admin token in {}", path.display());
        }
        eprintln!("tessera serve: listening on {scheme}://{addr}");
        if let Some(metrics) = server.metrics_addr().context("the metrics address")? {
            eprintln!("tessera serve: metrics on http://{metrics}/metrics");
        }
        tracing::info!(%addr, scheme, "serving");
        // Requests in flight then finish (reading the body and handling it have up to
        // `request_timeout_secs` each), idle connections close at once.
        server
            .run(async {
                stop.await;
                eprintln!("tessera serve: shutting down");
            })
            .await?;
        Ok(ExitCode::SUCCESS)
    });
    // Requests have drained; what may still run is blocking work nobody waits for (a
    // collateral refresh stuck on an unreachable KDS or PCS for its fetch timeout): give it
    // a moment, never the whole timeout, so a stop stays within the drain the deployment
    // allows.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    served
}

/// How long, once serving has stopped, blocking work still running may delay the exit.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// `--listen`: an IP address and a port. A host name is refused with what to write instead.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>().map_err(|_| {
        format!(
            "{text:?} is not an IP address and port (write 127.0.0.1:8080, 0.0.0.0:8080 or \
             [::1]:8080; host names such as localhost are not resolved)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ServeArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: ServeArgs,
        }
        let mut argv = vec!["t"];
        argv.extend_from_slice(extra);
        T::try_parse_from(argv).unwrap().a
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ntoken_ttl_secs = 60\n[verifier]\nendorsements = [\"e\"]\n",
        )
        .unwrap();
        let data = dir.path().join("d");
        let c = configure(&args(&[
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--endorsements",
            "/x",
        ]))
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:0");
        assert_eq!(c.data_dir, data);
        assert_eq!(c.token_ttl_secs, 60);
        assert_eq!(
            c.verifier.endorsements,
            vec![dir.path().join("e"), PathBuf::from("/x")]
        );
        let c = configure(&args(&["--config", file.to_str().unwrap()])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert!(c.data_dir.ends_with("tessera"));
    }

    #[test]
    fn the_readme_example_configuration_loads() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("# tessera.toml").unwrap();
        let block = &readme[start..];
        let block = &block[..block.find("```").unwrap()];
        let c = ServerConfig::from_toml(block, Path::new("/etc/tessera")).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(c.admin.tokens.len(), 1);
        assert_eq!(c.admin.jwt_keys.len(), 1);
        assert_eq!(
            c.verifier.endorsements,
            vec![PathBuf::from("/etc/tessera/endorsements")]
        );
    }

    /// The compose deployment's configuration loads with the broker's own parser (its keys
    /// exist, with the right types).
    #[test]
    fn the_compose_configuration_loads() {
        // Read when the test runs (not compiled in: deploy/ is not in the image's build
        // context).
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/compose/tessera.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let c = ServerConfig::from_toml(&text, Path::new("/etc/tessera")).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert!(c.tls.is_some());
        assert_eq!(c.admin.tokens.len(), 1);
        assert_eq!(c.kek_path(), PathBuf::from("/run/secrets/tessera/kek"));
    }

    /// `--tls-reload-secs` sets the period of the flags' files or of the configuration's
    /// `[tls]`, is bounded as the file's key is, and is refused where there is no TLS.
    #[test]
    fn tls_reload_secs_flag() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let flags = |extra: &[&str]| {
            let mut a = vec!["--data-dir", d, "--tls-cert", "c.pem", "--tls-key", "k.pem"];
            a.extend_from_slice(extra);
            configure(&args(&a))
        };
        assert_eq!(flags(&[]).unwrap().tls.unwrap().reload_secs, 60);
        let c = flags(&["--tls-reload-secs", "0"]).unwrap();
        assert_eq!(c.tls.unwrap().reload_secs, 0);
        assert!(flags(&["--tls-reload-secs", "86401"]).is_err());

        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[tls]\ncert = \"c\"\nkey = \"k\"\nreload_secs = 5\n").unwrap();
        let f = file.to_str().unwrap();
        let c = configure(&args(&["--data-dir", d, "--config", f])).unwrap();
        assert_eq!(c.tls.unwrap().reload_secs, 5);
        let c = configure(&args(&[
            "--data-dir",
            d,
            "--config",
            f,
            "--tls-reload-secs",
            "7",
        ]));
        assert_eq!(c.unwrap().tls.unwrap().reload_secs, 7);
        // The flags' files keep the file's period unless the flag says otherwise.
        let c = configure(&args(&[
            "--data-dir",
            d,
            "--config",
            f,
            "--tls-cert",
            "x.pem",
            "--tls-key",
            "y.pem",
        ]))
        .unwrap();
        assert_eq!(c.tls.unwrap().reload_secs, 5);

        let e = configure(&args(&["--data-dir", d, "--tls-reload-secs", "5"])).unwrap_err();
        assert!(e.to_string().contains("without TLS"), "{e}");
    }

    #[test]
    fn bad_configs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen_addr = \"127.0.0.1:9000\"\n").unwrap();
        assert!(configure(&args(&["--config", file.to_str().unwrap()])).is_err());
        std::fs::write(&file, "token_ttl_secs = 1\n").unwrap();
        assert!(configure(&args(&["--config", file.to_str().unwrap()])).is_err());
        std::fs::write(&file, "[[[").unwrap();
        assert!(configure(&args(&["--config", file.to_str().unwrap()])).is_err());
    }
}
