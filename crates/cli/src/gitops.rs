//! `tessera secret seal | import | coco-sealed | set-policy | rotate-sealing-key`: secrets sealed
//! offline to the broker's public sealing key so they can live in Git, their idempotent import
//! (one file or a directory, for GitOps sync), the Confidential Containers sealed-secret form, and
//! repository default policies.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;
use tessera_broker::gitseal;
use tessera_broker::resource::{ResourcePath, check_repo};

use crate::admin::{AdminClient, ConnArgs, Refused, ValueArgs, read_capped};

/// Largest sealed file or key set read.
const MAX_SEALED_FILE: u64 = 4 * 1024 * 1024;

/// The file name ending of sealed secrets in a directory (`REPO/TYPE/TAG.sealed`).
pub(crate) const SEALED_SUFFIX: &str = ".sealed";

#[derive(Args, Debug)]
pub(crate) struct SealArgs {
    /// The resource, REPO/TYPE/TAG, the sealed secret is bound to.
    resource: String,
    /// The policy (TOML or JSON) sealed with it; reference files are inlined.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// The broker's public sealing key: a file (the JSON of `GET /kbs/v0/sealing-key`) or the
    /// broker's URL (fetched, no credentials needed; https, or plain http to loopback only).
    #[arg(long, value_name = "FILE|URL")]
    broker_key: String,
    /// PEM CA certificate to trust when `--broker-key` is an https URL.
    #[arg(long, value_name = "PEM")]
    cacert: Option<PathBuf>,
    /// Read the secret from FILE (default: standard input, which must not be a terminal).
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Write the sealed secret to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    /// A sealed file, or a directory of `REPO/TYPE/TAG.sealed` files (each must be sealed for the
    /// path it sits at).
    path: PathBuf,
    /// With a single file: the resource it must be sealed for.
    #[arg(long, value_name = "REPO/TYPE/TAG")]
    resource: Option<String>,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub(crate) struct CocoSealedArgs {
    /// The resource, REPO/TYPE/TAG (it must have a live version).
    resource: String,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub(crate) struct SetPolicyArgs {
    /// The repository.
    repo: String,
    /// Its default policy (TOML or JSON), used by puts and rotations that name none.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RotateSealingKeyArgs {
    #[command(flatten)]
    conn: ConnArgs,
}

fn broker_keys(source: &str, cacert: Option<&Path>) -> Result<Value> {
    if source.starts_with("http://") || source.starts_with("https://") {
        // Over plain HTTP anyone on the way could hand over a key of their own, and the
        // secret would be sealed to them: loopback only (the key's file otherwise).
        let source = crate::admin::plain_http_to_loopback_only(source).with_context(|| {
            "--broker-key: fetch the key over https, or save it from a channel you trust and \
             give the file"
        })?;
        let base = source.trim_end_matches('/');
        let url = if base.ends_with("/kbs/v0/sealing-key") {
            base.to_owned()
        } else {
            format!("{base}/kbs/v0/sealing-key")
        };
        let agent = crate::admin::agent(cacert, Duration::from_secs(30))?;
        let mut answer = agent.get(&url).call().with_context(|| {
            format!(
                "fetching the sealing key from {}",
                crate::admin::redacted_url(&url)
            )
        })?;
        let status = answer.status();
        if status != ureq::http::StatusCode::OK {
            bail!(
                "fetching the sealing key from {}: the broker answered {status} (is it a \
                 Tessera broker with sealed secrets on, at this address?)",
                crate::admin::redacted_url(&url)
            );
        }
        let body = answer
            .body_mut()
            .with_config()
            .limit(MAX_SEALED_FILE)
            .read_to_vec()
            .context("reading the sealing key")?;
        return serde_json::from_slice(&body).context("the sealing key is not JSON");
    }
    let bytes = read_capped(Path::new(source), MAX_SEALED_FILE)?;
    serde_json::from_slice(&bytes).with_context(|| format!("{source}: not a sealing key (JSON)"))
}

pub(crate) fn seal(args: &SealArgs) -> Result<ExitCode> {
    let resource = ResourcePath::parse(&args.resource)
        .with_context(|| format!("resource {:?}", args.resource))?;
    // Where the sealed file goes is checked before the secret is read: a new or a regular
    // file, replaced whole (a link there is refused, never written through).
    if let Some(path) = &args.out {
        crate::get_secret::check_kind("--out", path)?;
    }
    let policy = crate::sealed_policy::policy_text(&args.policy)?;
    let keys = broker_keys(&args.broker_key, args.cacert.as_deref())?;
    let value = crate::admin::secret_bytes(&ValueArgs::from_file(args.from.clone()))?;
    let sealed = gitseal::seal(&keys, &resource, &policy, &value)?;
    match &args.out {
        Some(path) => {
            // Ciphertext meant for Git: readable by others, as a checked-out file is.
            crate::get_secret::write_output("--out", path, format!("{sealed}\n").as_bytes(), 0o644)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("sealed {resource} to {}", path.display());
        }
        None => crate::say!("{sealed}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A sealed file and the resource it must be sealed for (its path under the directory).
type SealedFile = (PathBuf, String);

/// The sealed files under `dir` with the resource each must be sealed for, and the symbolic
/// links in the tree that could stand for sealed files: one named `*.sealed`, or one to a
/// directory (each refused on its own by `import`; none is followed). Other links (a
/// `README.md` pointing into `docs/`) are no more a sealed file than any other file is.
fn sealed_files(dir: &Path) -> Result<(Vec<SealedFile>, Vec<PathBuf>)> {
    let mut out = Vec::new();
    let mut links = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            let path = entry.path();
            // Links are not followed: one to `..` would make the walk endless, one named
            // `*.sealed` would send a file from outside the directory to the broker.
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {}", path.display()))?;
            if kind.is_symlink() {
                let named_sealed = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(SEALED_SUFFIX));
                if named_sealed || std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                    links.push(path);
                }
                continue;
            }
            if kind.is_dir() {
                stack.push(path);
            } else if let Some(rel) = path
                .strip_prefix(dir)
                .ok()
                .and_then(Path::to_str)
                .and_then(|r| r.strip_suffix(SEALED_SUFFIX))
            {
                out.push((path.clone(), rel.replace(std::path::MAIN_SEPARATOR, "/")));
            }
        }
        if out.len() + links.len() > 10_000 {
            bail!("{}: more than 10000 sealed files and links", dir.display());
        }
    }
    out.sort();
    links.sort();
    Ok((out, links))
}

/// One line on standard error about a file of the import: file names, what a sealed file's
/// header claims and the broker's answer are anyone's text, so control characters (an ESC
/// that would drive the operator's terminal) are written escaped.
fn say_escaped(line: &str) {
    eprintln!("{}", tessera::text::escape_controls(line, false));
}

pub(crate) fn import(args: &ImportArgs) -> Result<ExitCode> {
    let (files, links) = if args.path.is_dir() {
        if args.resource.is_some() {
            bail!("--resource goes with a single file; a directory's paths name the resources");
        }
        sealed_files(&args.path)?
    } else {
        let expected = args.resource.clone().unwrap_or_default();
        (vec![(args.path.clone(), expected)], Vec::new())
    };
    // A directory with nothing to import is a mistake (the wrong checkout, a path one level
    // off), not a sync that found everything in place.
    if files.is_empty() && links.is_empty() {
        bail!(
            "{}: holds no *{SEALED_SUFFIX} file: nothing to import",
            args.path.display()
        );
    }
    let client = AdminClient::new(&args.conn)?;
    let mut refused = 0usize;
    for link in &links {
        say_escaped(&format!(
            "{}: a symbolic link (the sealed files must be the directory's own: not followed); \
             refused",
            link.display()
        ));
        refused += 1;
    }
    for (path, expected) in &files {
        // The broker checks the sealed file against `expected`: it must be a resource path as
        // the broker parses it, or the check could be skipped (an empty name: `DIR/.sealed`)
        // or fooled (`%74eam-a/...`, which the query would decode to `team-a/...`; `#`, which
        // would end the URL). A directory's file at no such path is refused on its own.
        // (Only a single file without --resource has no path to check: the broker then takes
        // the one the file names.)
        if (args.path.is_dir() || !expected.is_empty())
            && let Err(e) = ResourcePath::parse(expected)
        {
            if args.path.is_dir() {
                say_escaped(&format!(
                    "{}: not at a REPO/TYPE/TAG path ({expected:?}: {e}); refused",
                    path.display()
                ));
                refused += 1;
                continue;
            }
            bail!("--resource {expected:?}: {e}");
        }
        let bytes = read_capped(path, MAX_SEALED_FILE)?;
        // What the file's header says it was sealed for, read without the key (the broker,
        // which opens it, decides): a file at another path is named here with both paths,
        // where the broker's answer could only say that the request is malformed.
        if !expected.is_empty()
            && let Some(claimed) = std::str::from_utf8(&bytes)
                .ok()
                .and_then(tessera_broker::gitseal::claimed_resource)
            && claimed != *expected
        {
            let what = if args.path.is_dir() {
                "at"
            } else {
                "given as --resource"
            };
            // The claim is the file's unauthenticated header: anyone's text.
            say_escaped(&format!(
                "{}: sealed for {claimed}, {what} {expected} (a sealed file opens only for the \
                 resource it was sealed for); refused",
                path.display()
            ));
            refused += 1;
            continue;
        }
        let target = if expected.is_empty() {
            "/kbs/v0/admin/sealed".to_owned()
        } else {
            format!("/kbs/v0/admin/sealed?resource={expected}")
        };
        match client.post_raw(&format!("import {}", path.display()), &target, &bytes) {
            Ok(answer) => {
                let state = if answer.get("unchanged").and_then(Value::as_bool) == Some(true) {
                    "unchanged"
                } else {
                    "imported"
                };
                let line = format!(
                    "{}: {} version {} ({state})",
                    path.display(),
                    answer
                        .get("resource")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    answer
                        .get("version")
                        .map(Value::to_string)
                        .unwrap_or_default(),
                );
                crate::say!("{}", tessera::text::escape_controls(&line, false));
            }
            Err(e) if e.downcast_ref::<Refused>().is_some() => {
                say_escaped(&format!("{e:#}"));
                refused += 1;
            }
            Err(e) => return Err(e),
        }
    }
    if refused > 0 {
        let total = files.len() + links.len();
        return Err(Refused(format!(
            "{refused} of {total} sealed files and links refused"
        ))
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn coco_sealed(args: &CocoSealedArgs) -> Result<ExitCode> {
    let resource = ResourcePath::parse(&args.resource)
        .with_context(|| format!("resource {:?}", args.resource))?;
    let client = AdminClient::new(&args.conn)?;
    let answer = client.post_raw(
        &format!("CoCo sealed secret for {resource}"),
        &format!("/kbs/v0/admin/coco-sealed/{resource}"),
        b"",
    )?;
    let sealed = answer
        .get("sealed")
        .and_then(Value::as_str)
        .context("the answer has no sealed secret")?;
    crate::say!("{}", tessera::text::escape_controls(sealed, false));
    eprintln!(
        "verification key served as {}",
        crate::admin::text(&answer, "kid")
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn set_policy(args: &SetPolicyArgs) -> Result<ExitCode> {
    check_repo(&args.repo).with_context(|| format!("repository {:?}", args.repo))?;
    let policy = crate::sealed_policy::policy_text(&args.policy)?;
    let client = AdminClient::new(&args.conn)?;
    let answer = client.put_raw(
        &format!("set the policy of {}", args.repo),
        &format!("/kbs/v0/admin/policy/{}", args.repo),
        policy.as_bytes(),
    )?;
    crate::say!(
        "{}: default policy {}",
        args.repo,
        crate::admin::text(&answer, "policy_digest")
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rotate_sealing_key(args: &RotateSealingKeyArgs) -> Result<ExitCode> {
    let client = AdminClient::new(&args.conn)?;
    let answer = client
        .post_raw(
            "rotate the sealing key",
            "/kbs/v0/admin/sealing-key/rotate",
            b"",
        )
        .map_err(crate::admin::rotation_hint)?;
    crate::say!(
        "current sealing key {} (older keys still open what they sealed)",
        crate::admin::text(&answer, "current")
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk finds the sealed files with their resources, and follows no symbolic link
    /// anywhere in the tree (one to `..` would loop; one named `*.sealed` would send a file
    /// from outside the directory): each is listed, for `import` to refuse on its own.
    #[test]
    fn sealed_files_are_the_directorys_own() {
        let dir = tempfile::tempdir().unwrap();
        let team = dir.path().join("team-a").join("key");
        std::fs::create_dir_all(&team).unwrap();
        std::fs::write(team.join("db.sealed"), "x").unwrap();
        std::fs::write(team.join("README"), "x").unwrap();
        let (found, links) = sealed_files(dir.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1, "team-a/key/db");
        assert!(links.is_empty());
        // A link to a file not named *.sealed is no sealed file: passed over like one.
        std::os::unix::fs::symlink("db.sealed", team.join("README.md")).unwrap();
        let (found, links) = sealed_files(dir.path()).unwrap();
        assert_eq!((found.len(), links.len()), (1, 0), "{links:?}");
        for (name, target) in [
            ("loop", dir.path().to_path_buf()),
            ("x.sealed", PathBuf::from("/etc/hostname")),
            ("dangling.sealed", dir.path().join("nothing")),
        ] {
            let link = team.join(name);
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let (found, links) = sealed_files(dir.path()).unwrap();
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].1, "team-a/key/db");
            assert_eq!(links, vec![link.clone()]);
            std::fs::remove_file(&link).unwrap();
        }
    }
}
