//! `tessera verify --policy`, `tessera policy check|from-evidence` and `tessera token`: printing
//! appraisals, checking and generating policies, and EAR attestation-result tokens.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tessera_pki::UnixTime;
use tessera_policy::ear::{self, Alg, EarClaims, SigningKey, VerifyingKey};
use tessera_policy::{Appraisal, Outcome, Policy, policy_from_evidence};

use crate::{Checked, EvidenceArgs, say};

#[derive(Subcommand, Debug)]
pub(crate) enum PolicyCommand {
    /// Validate a policy (exit 0 valid, 1 invalid) and warn about weak settings.
    Check(CheckArgs),
    /// Verify evidence and print a strict policy (TOML) pinning what it measured, to review.
    FromEvidence(Box<FromEvidenceArgs>),
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// The policy file (TOML, or JSON when it starts with `{`).
    file: PathBuf,
    /// Treat warnings as failures (exit 1).
    #[arg(long)]
    deny_warnings: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct FromEvidenceArgs {
    #[command(flatten)]
    input: EvidenceArgs,
    /// The generated policy's id.
    #[arg(long, default_value = "generated")]
    id: String,
}

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Generate an EAR signing key (PKCS#8 PEM) and print its public key.
    Keygen(KeygenArgs),
    /// Verify an EAR token (JWT or CWT) and print its claims (exit 0 valid, 1 invalid).
    Verify(TokenVerifyArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum AlgArg {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
}

impl From<AlgArg> for Alg {
    fn from(a: AlgArg) -> Self {
        match a {
            AlgArg::Es256 => Alg::Es256,
            AlgArg::Es384 => Alg::Es384,
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct KeygenArgs {
    /// Where to write the private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Signature algorithm.
    #[arg(long, value_enum, default_value = "es256")]
    alg: AlgArg,
}

#[derive(Args, Debug)]
pub(crate) struct TokenVerifyArgs {
    /// The token file: a JWT (text) or a CWT (COSE_Sign1 bytes).
    token: PathBuf,
    /// The issuer's public key: SPKI PEM, or a JWK JSON file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Verification time: RFC 3339 (`2025-06-05T03:45:00Z`), a date (`2025-06-05`, midnight
    /// UTC), Unix seconds, or `now` (the default).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum EarFormat {
    /// JWT (JWS compact, text).
    Jwt,
    /// CWT (COSE_Sign1, CBOR bytes).
    Cwt,
}

/// `verify` options for writing the appraisal as an EAR token.
#[derive(Args, Debug)]
pub(crate) struct EarArgs {
    /// With --policy: write the appraisal as an EAR attestation result to FILE.
    #[arg(long, value_name = "FILE")]
    ear_out: Option<PathBuf>,
    /// EAR token format (default jwt); needs --ear-out.
    #[arg(long, value_enum, requires = "ear_out")]
    ear_format: Option<EarFormat>,
    /// The EAR signing key (PKCS#8 PEM, from `tessera token keygen`). Without it a fresh ES256
    /// key is generated and its public key written to FILE.pub.pem.
    #[arg(long, value_name = "FILE")]
    ear_key: Option<PathBuf>,
    /// EAR token lifetime in seconds (1 to 2592000, thirty days; default 300); needs
    /// --ear-out.
    #[arg(long, value_name = "SECS", requires = "ear_out",
          value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    ear_ttl: Option<u64>,
}

/// An EAR token's lifetime without `--ear-ttl` (seconds).
const DEFAULT_EAR_TTL: u64 = 300;

/// Largest EAR signing key file read (a PKCS#8 PEM is well under a kilobyte).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A ready EAR issuer: the key and where to write.
pub(crate) struct EarIssuer {
    out: PathBuf,
    format: EarFormat,
    key: SigningKey,
    ttl: u64,
    /// Where the public key of a key made for this token goes (with the token, so that a
    /// verification that fails leaves neither behind).
    pub_out: Option<PathBuf>,
}

impl EarArgs {
    /// Load or generate the key before verification, so a bad key is a usage error.
    pub(crate) fn prepare(&self, have_policy: bool) -> Result<Option<EarIssuer>> {
        let Some(out) = &self.ear_out else {
            if self.ear_key.is_some() {
                bail!("--ear-key needs --ear-out");
            }
            return Ok(None);
        };
        if !have_policy {
            bail!("--ear-out needs --policy: an attestation result is an appraisal");
        }
        // Where the token goes is checked before anything is verified: a new or a regular
        // file (a link there is refused, never written through).
        crate::get_secret::check_kind("--ear-out", out)?;
        let (key, pub_out) = match &self.ear_key {
            Some(path) => {
                // Read into a zeroized buffer and looked at in place: no copy of the key is
                // made, not even by the error of a file that is not UTF-8.
                let bytes = crate::read_secret(path, MAX_KEY_FILE)?;
                let pem = std::str::from_utf8(&bytes)
                    .ok()
                    .with_context(|| format!("{}: not UTF-8", path.display()))?;
                let key = SigningKey::from_pkcs8_pem(pem)
                    .with_context(|| format!("{}: not a PKCS#8 EC key", path.display()))?;
                (key, None)
            }
            None => {
                let pub_out = PathBuf::from(format!("{}.pub.pem", out.display()));
                check_public_key_path(&pub_out)?;
                (SigningKey::generate(Alg::Es256)?, Some(pub_out))
            }
        };
        Ok(Some(EarIssuer {
            out: out.clone(),
            format: self.ear_format.unwrap_or(EarFormat::Jwt),
            key,
            ttl: self.ear_ttl.unwrap_or(DEFAULT_EAR_TTL),
            pub_out,
        }))
    }
}

/// Where `verify --ear-out FILE` without `--ear-key` puts the fresh key's public key
/// (`FILE.pub.pem`): nothing there, a link (replaced, not followed), or a regular file that is
/// not a private key. A device, pipe or directory is refused, and so is a private key, which
/// is never replaced by the public key of another.
fn check_public_key_path(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("{}", path.display()))),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Ok(());
    }
    if !kind.is_file() {
        bail!(
            "{}: not a regular file (a device, a pipe, a socket or a directory), so not \
             replaced by the token's public key",
            path.display()
        );
    }
    let held = crate::admin::read_capped(path, 1024 * 1024)
        .with_context(|| format!("{}: reading what is there", path.display()))?;
    if held
        .windows(b"PRIVATE KEY".len())
        .any(|w| w == b"PRIVATE KEY")
    {
        bail!(
            "{}: holds a private key, which the token's public key never replaces; give \
             --ear-key, or another --ear-out",
            path.display()
        );
    }
    Ok(())
}

impl EarIssuer {
    /// Sign the appraisal and write the token.
    pub(crate) fn issue(&self, appraisal: &Appraisal, claims: Value) -> Result<()> {
        let evidence = match claims {
            Value::Object(map) => Some(map),
            _ => None,
        };
        let ear = EarClaims::from_appraisal(appraisal, evidence, UnixTime::now(), self.ttl, None);
        let bytes = match self.format {
            EarFormat::Jwt => ear::issue_jwt(&ear, &self.key)?.into_bytes(),
            EarFormat::Cwt => ear::issue_cwt(&ear, &self.key)?,
        };
        // The token is written in full beside --ear-out first: when the public key cannot be
        // written, the token is not put in place either, and whatever was at --ear-out stays
        // as it was.
        crate::get_secret::check_kind("--ear-out", &self.out)?;
        let token = crate::get_secret::Staged::write(&self.out, &bytes, 0o644)
            .with_context(|| format!("writing --ear-out {}", self.out.display()))?;
        // The token without the key that verifies it is of no use: both are written in full
        // first, then the token is put in place (when that fails, nothing changed), then the
        // key. The key's path is derived, not named: a link there is replaced, never written
        // through.
        let public = match &self.pub_out {
            Some(pub_path) => {
                check_public_key_path(pub_path)?;
                Some(crate::get_secret::Staged::write(
                    pub_path,
                    self.key.verifying_key().to_spki_pem().as_bytes(),
                    0o644,
                )?)
            }
            None => None,
        };
        token.commit()?;
        if let Some(public) = public {
            public.commit()?;
        }
        if let Some(pub_path) = &self.pub_out {
            eprintln!(
                "note: no --ear-key: signed with a fresh ES256 key; its public key is in {}",
                pub_path.display()
            );
        }
        Ok(())
    }
}

/// Add the appraisal to a verification's JSON: `appraisal`, and the verdict and errors it implies.
pub(crate) fn extend_json(out: &mut Value, a: &Appraisal) {
    if !a.passed() {
        out["verdict"] = json!("fail");
        let errors: Vec<Value> = a
            .failures()
            .map(|r| {
                json!({
                    "check": "policy",
                    "rule": r.rule,
                    "field": r.field,
                    "message": r.message(),
                })
            })
            .collect();
        out["errors"] = json!(errors);
    }
    out["appraisal"] = json!(a);
}

/// Print an appraisal for people: the verdict, failing rules first, then passes, then what was
/// not checked.
pub(crate) fn print_appraisal(a: &Appraisal) {
    let failed = a.failures().count();
    if a.passed() {
        say!(
            "POLICY PASS  policy {:?}: every checked rule passed",
            a.policy_id()
        );
    } else {
        say!(
            "POLICY FAIL  policy {:?}: {failed} rule{} failed",
            a.policy_id(),
            if failed == 1 { "" } else { "s" }
        );
    }
    for r in a.ordered() {
        let tag = match r.outcome {
            Outcome::Fail => "FAIL",
            Outcome::Pass => "pass",
            Outcome::NotChecked => "  - ",
        };
        match r.outcome {
            Outcome::NotChecked => say!(
                "  {tag} {:<40} not checked ({}); actual {}",
                r.rule,
                r.note.as_deref().unwrap_or(""),
                r.actual
            ),
            _ => {
                say!(
                    "  {tag} {:<40} {}: expected {}, actual {}",
                    r.rule,
                    r.field,
                    r.expected,
                    r.actual
                );
                if let (Some(note), Outcome::Fail) = (&r.note, r.outcome) {
                    say!("       {note}");
                }
            }
        }
    }
    for b in a.behind() {
        say!(
            "  behind  {} is {}, policy requires {}",
            b.component,
            b.actual,
            b.required
        );
    }
    if !a.advisory_ids().is_empty() {
        say!("  advisories  {}", a.advisory_ids().join(", "));
    }
}

/// `tessera policy ...`.
pub(crate) fn run(cmd: &PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check(args) => check(args),
        PolicyCommand::FromEvidence(args) => from_evidence(args),
    }
}

fn check(args: &CheckArgs) -> Result<ExitCode> {
    // A file that cannot be read is an I/O error (exit 2), not an invalid policy; with --json
    // it is said in this command's own shape, as an invalid policy is.
    let unreadable = |message: String| -> Result<ExitCode> {
        if args.json {
            say!(
                "{}",
                json!({ "valid": false, "error": message, "warnings": [] })
            );
            Ok(ExitCode::from(2))
        } else {
            Err(anyhow::anyhow!(message))
        }
    };
    if !args.file.is_file() {
        return unreadable(format!("{}: no such file", args.file.display()));
    }
    let policy = match Policy::load(&args.file) {
        Ok(p) => p,
        Err(
            e @ (tessera_policy::PolicyError::Io { .. }
            | tessera_policy::PolicyError::ReferenceIo { .. }),
        ) => return unreadable(e.to_string()),
        Err(e) => {
            if args.json {
                say!(
                    "{}",
                    json!({ "valid": false, "error": e.to_string(), "warnings": [] })
                );
            } else {
                say!("INVALID  {}", args.file.display());
                say!("  {}", crate::printable(&e.to_string()));
            }
            return Ok(ExitCode::from(1));
        }
    };
    let warnings = policy.warnings();
    if args.json {
        say!(
            "{}",
            json!({ "valid": true, "id": policy.id, "warnings": warnings })
        );
    } else {
        let tees: Vec<&str> = [
            policy.snp.as_ref().map(|_| "snp"),
            policy.tdx.as_ref().map(|_| "tdx"),
            policy.sgx.as_ref().map(|_| "sgx"),
        ]
        .into_iter()
        .flatten()
        .collect();
        say!(
            "VALID  {} (policy {:?}; rules for {})",
            args.file.display(),
            policy.id,
            tees.join(", ")
        );
        for w in &warnings {
            say!("  warning  {}: {}", w.field, w.message);
        }
    }
    Ok(if args.deny_warnings && !warnings.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn from_evidence(args: &FromEvidenceArgs) -> Result<ExitCode> {
    let checked = crate::check_evidence(&args.input)?;
    let Checked::Verified(v) = &checked else {
        // On standard error: standard output is the policy (`> policy.toml`), and a rejection
        // there would be a file that is no policy.
        eprintln!("the evidence did not verify; no policy written:");
        if let Some(rejection) = checked.rejection() {
            eprintln!("{}", rejection.text);
        }
        return Ok(ExitCode::from(1));
    };
    let mut notes: Vec<String> = Vec::new();
    if let Some(snp) = v.snp() {
        let ver = snp.verification();
        if !ver.revocation_checked {
            notes.push(format!(
                "snp.revocation = \"required\", but this evidence was verified without AMD's ARK CRL: \
                 the policy fails it until --crl gives a current CRL (KDS /vcek/v1/{}/crl)",
                ver.product.name()
            ));
        }
    }
    let (policy, at) = (policy_from_evidence(v.as_ref(), &args.id), v.verified_at());
    if policy
        .tdx
        .as_ref()
        .is_some_and(|t| t.mr_service_td.is_none())
    {
        notes.push(String::from(
            "tdx.mr_service_td is not pinned: this TD 1.0 quote (v4) has no MRSERVICETD, and a \
             rule for it would fail such quotes; so a TD 1.5 quote (v5) of the same TD passes \
             whatever service TD it is bound to. Pin it once the TD's quotes are v5",
        ));
    }
    let toml = policy.to_toml()?;
    say!(
        "# Generated by `tessera policy from-evidence` from {} (verified at {at}).",
        args.input.evidence.display()
    );
    say!("# It pins what this evidence measured and how its platform was configured. Review it:");
    say!("# REPORT_DATA (fresh per request) and the chip/platform identity are not pinned; TCB");
    say!(
        "# floors are this platform's current values, so firmware updates pass and rollbacks fail."
    );
    for note in &notes {
        say!("# NOTE: {note}");
        eprintln!("note: {note}");
    }
    // The same warnings `policy check` gives (e.g. debug = "must" from a debuggable guest).
    for w in policy.warnings() {
        say!("# WARNING: {}: {}", w.field, w.message);
        eprintln!("warning: {}: {}", w.field, w.message);
    }
    say!("{toml}");
    Ok(ExitCode::SUCCESS)
}

/// `tessera token ...`.
pub(crate) fn token(cmd: &TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Keygen(args) => keygen(args),
        TokenCommand::Verify(args) => token_verify(args),
    }
}

/// Creates `path` (it must not exist: `create_new` neither overwrites a file nor follows a
/// link planted there) with mode `mode` and writes `text`, synced. Should the writing fail,
/// the file it created is removed: no partial key is left behind.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(mode);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written {
        drop(f);
        // This process created it (exclusively): what is removed is its own partial file.
        let _ = std::fs::remove_file(path);
        return Err(anyhow::Error::new(e).context(format!("writing {}", path.display())));
    }
    Ok(())
}

fn keygen(args: &KeygenArgs) -> Result<ExitCode> {
    let key = SigningKey::generate(args.alg.into())?;
    let public = key.verifying_key();
    let pub_path = PathBuf::from(format!("{}.pub.pem", args.out.display()));
    // Neither file is overwritten, nor written through a link: the public key of another
    // private key (or a file a link points at) stays as it was.
    if std::fs::symlink_metadata(&args.out).is_ok() {
        bail!(
            "{}: exists already (a private key?); not overwritten: give another --out",
            args.out.display()
        );
    }
    if std::fs::symlink_metadata(&pub_path).is_ok() {
        bail!(
            "{}: exists already (a public key of another private key?); not overwritten",
            pub_path.display()
        );
    }
    write_new(&args.out, &key.to_pkcs8_pem()?, 0o600)?;
    if let Err(e) = write_new(&pub_path, &public.to_spki_pem(), 0o644) {
        // A private key without its public key is not left behind.
        let _ = std::fs::remove_file(&args.out);
        return Err(e);
    }
    // The message to standard error; standard output is the public JWK alone (`| jq`).
    eprintln!(
        "wrote {} (private) and {}",
        args.out.display(),
        pub_path.display()
    );
    say!("{}", public.to_jwk());
    Ok(ExitCode::SUCCESS)
}

fn token_verify(args: &TokenVerifyArgs) -> Result<ExitCode> {
    let inputs = || -> Result<(VerifyingKey, Vec<u8>, UnixTime)> {
        let key_text = String::from_utf8(crate::read_bounded(&args.key)?)
            .with_context(|| format!("{}: not UTF-8", args.key.display()))?;
        let key = if key_text.trim_start().starts_with('{') {
            serde_json::from_str::<Value>(&key_text)
                .map_err(anyhow::Error::from)
                .and_then(|jwk| VerifyingKey::from_jwk(&jwk).map_err(anyhow::Error::from))
        } else {
            VerifyingKey::from_spki_pem(&key_text).map_err(anyhow::Error::from)
        }
        .with_context(|| {
            format!(
                "{}: not an EC public key (SPKI PEM or JWK)",
                args.key.display()
            )
        })?;
        let token = crate::read_bounded(&args.token)?;
        let at = crate::parse_at(args.at.as_deref())?;
        Ok((key, token, at))
    };
    // A key or token that cannot be read is a usage or I/O error (exit 2); with --json it is
    // said in this command's own shape, as an invalid token is.
    let (key, token, at) = match inputs() {
        Ok(inputs) => inputs,
        Err(e) if args.json => {
            say!("{}", json!({ "valid": false, "error": format!("{e:#}") }));
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e),
    };
    let result = match std::str::from_utf8(&token) {
        Ok(text) if text.trim().matches('.').count() == 2 => ear::verify_jwt(text.trim(), &key, at),
        _ => ear::verify_cwt(&token, &key, at),
    };
    match result {
        Ok(claims) => {
            if args.json {
                say!("{}", json!({ "valid": true, "claims": claims.to_json() }));
            } else {
                // The signature says who issued it; the status what it vouches for: a script
                // reading only the exit code must not take a contraindicated result for a pass.
                let status = claims.cpu().map_or("none", |c| c.status().as_str());
                say!("VALID  EAR token signed by the given key; ear.status {status}");
                if status != "affirming" {
                    eprintln!(
                        "note: the token is genuine, but its status is {status}: it does not \
                         affirm the attester (exit 0 says only that the token verified)"
                    );
                }
                say!(
                    "{}",
                    serde_json::to_string_pretty(&claims.to_json()).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.json {
                say!("{}", json!({ "valid": false, "error": e.to_string() }));
            } else {
                say!("INVALID  {}", crate::printable(&e.to_string()));
            }
            Ok(ExitCode::from(1))
        }
    }
}
