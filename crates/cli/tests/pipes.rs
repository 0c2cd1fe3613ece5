//! Evidence and certificates read from pipes: every input is read once, `-` is standard input,
//! and the size cap applies while reading (a pipe has no size on disk).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::{code, json, s, stderr};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/evidence/snp-milan")
        .join(name)
}

/// `tessera ARGS` with `input` written to its standard input (from another thread, so a large
/// input cannot deadlock against the output pipes).
fn with_stdin(args: &[&str], input: Vec<u8>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The reader may stop early (the cap); a broken pipe is then expected.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

const AT: &str = "2022-09-25T00:55:28Z";

#[test]
fn a_report_piped_on_stdin_verifies_as_dash_and_as_dev_stdin() {
    let report = std::fs::read(sample("report.bin")).unwrap();
    let vcek = sample("vcek.der");
    let chain = sample("cert_chain.pem");
    for name in ["-", "/dev/stdin"] {
        let o = with_stdin(
            &[
                "verify",
                name,
                "--certs",
                s(&vcek),
                "--certs",
                s(&chain),
                "--at",
                AT,
                "--json",
            ],
            report.clone(),
        );
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        assert_eq!(json(&o)["verdict"], "pass", "{name}");
    }
    // `show` too, and a rejection read from a pipe still names the evidence (exit 1, not 2).
    let o = with_stdin(&["show", "-", "--json"], report.clone());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["tee"], "snp");
    let o = with_stdin(&["show", "-", "--json"], b"not evidence at all".to_vec());
    assert_eq!(code(&o), 1, "{}", stderr(&o));
}

#[test]
fn certificates_can_come_from_stdin_once_only() {
    let report = sample("report.bin");
    let vcek = std::fs::read(sample("vcek.der")).unwrap();
    let chain = sample("cert_chain.pem");
    let o = with_stdin(
        &[
            "verify",
            s(&report),
            "--certs",
            "-",
            "--certs",
            s(&chain),
            "--at",
            AT,
        ],
        vcek.clone(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Two inputs cannot both be standard input: a usage error, not a silently empty read.
    let o = with_stdin(
        &[
            "verify",
            "-",
            "--certs",
            "-",
            "--certs",
            s(&chain),
            "--at",
            AT,
        ],
        vcek,
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("standard input can be given once only"),
        "{}",
        stderr(&o)
    );
    // Said before anything is read: the report piped in is not taken for `--certs -` (whose
    // parse error would name the wrong input).
    let o = with_stdin(
        &["verify", "-", "--certs", "-", "--at", AT],
        std::fs::read(&report).unwrap(),
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("standard input can be given once only"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_endless_pipe_is_cut_at_the_cap_not_read_whole() {
    // 17 MiB of zeros through a pipe: refused at the 16 MiB cap (exit 2, an I/O error).
    let o = with_stdin(&["show", "-"], vec![0u8; 17 * 1024 * 1024]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("larger than"), "{}", stderr(&o));
    // /dev/zero has no end at all: the cap stops it.
    let o = common::tessera(&["show", "/dev/zero"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("larger than"), "{}", stderr(&o));
}

#[test]
fn with_json_every_error_is_one_object_on_stdout() {
    for (args, check) in [
        (
            &["verify", "/nonexistent/report.bin", "--json"][..],
            "input",
        ),
        (&["verify", "--json", "--no-such-flag", "x"][..], "usage"),
        (&["show", "--json"][..], "usage"),
        (&["show", "/dev/zero", "--json"][..], "input"),
    ] {
        let o = common::tessera(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        let j = json(&o);
        assert_eq!(j["verdict"], "error", "{args:?}");
        assert_eq!(j["errors"][0]["check"], check, "{args:?}");
        assert!(!j["errors"][0]["message"].as_str().unwrap().is_empty());
    }
    // Without --json, nothing on standard output.
    let o = common::tessera(&["verify", "/nonexistent/report.bin"]);
    assert_eq!(code(&o), 2);
    assert!(o.stdout.is_empty());
}

#[test]
fn at_takes_rfc3339_a_date_unix_seconds_and_now() {
    let report = sample("report.bin");
    let (vcek, chain) = (sample("vcek.der"), sample("cert_chain.pem"));
    let verdict = |at: &str| {
        let o = common::tessera(&[
            "verify",
            s(&report),
            "--certs",
            s(&vcek),
            "--certs",
            s(&chain),
            "--at",
            at,
            "--json",
        ]);
        (
            code(&o),
            json(&o)["verdict"].as_str().unwrap_or_default().to_owned(),
        )
    };
    for at in ["2022-09-25T00:55:28Z", "2022-09-25", "1664067328"] {
        assert_eq!(verdict(at), (0, "pass".to_owned()), "{at}");
    }
    // The forms are read, not ignored: 2099 is after the VCEK expired.
    for at in ["2099-01-01", "4070908800", "2099-01-01T00:00:00Z"] {
        assert_eq!(verdict(at), (1, "fail".to_owned()), "{at}");
    }
    // `now` is accepted (whatever the verdict today).
    assert_ne!(verdict("now").0, 2);
    let o = common::tessera(&["verify", s(&report), "--at", "yesterday"]);
    assert_eq!(code(&o), 2);
    for form in ["RFC 3339", "a date", "Unix seconds", "now"] {
        assert!(stderr(&o).contains(form), "{}", stderr(&o));
    }
}

#[test]
fn ear_format_without_ear_out_is_a_usage_error() {
    let o = common::tessera(&["verify", s(&sample("report.bin")), "--ear-format", "cwt"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--ear-out"), "{}", stderr(&o));
    // So is --ear-ttl, which was accepted and ignored without it.
    let o = common::tessera(&["verify", s(&sample("report.bin")), "--ear-ttl", "60"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--ear-out"), "{}", stderr(&o));
    assert!(stderr(&o).contains("Usage"), "{}", stderr(&o));
}

#[test]
fn completions_and_manual_pages_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let o = common::tessera(&["completions", shell]);
        assert_eq!(code(&o), 0, "{shell}: {}", stderr(&o));
        assert!(common::stdout(&o).contains("get-secret"), "{shell}");
    }
    let o = common::tessera(&["completions", "tcsh"]);
    assert_eq!(code(&o), 2);
    let o = common::tessera(&["man"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        common::stdout(&o).contains(".TH tessera 1"),
        "{}",
        common::stdout(&o)
    );
    let o = common::tessera(&["man", "verify"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(common::stdout(&o).contains("tessera\\-verify"));
    assert!(common::stdout(&o).contains("\\-\\-dangerous\\-test\\-root"));
    let o = common::tessera(&["man", "no-such-command"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("verify, show"), "{}", stderr(&o));
    assert!(stderr(&o).contains("in `tessera`;"), "{}", stderr(&o));
    // A reader that stops early (`| head`): no error. The bash script (about 100 KB) is more
    // than a pipe holds, so the write meets the closed pipe.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    // A nested command's page, named as its SEE ALSO names it or as it is typed.
    for args in [
        &["man", "secret", "put"][..],
        &["man", "secret-put"],
        &["man", "secret", "rotate-kek"],
    ] {
        let o = common::tessera(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        assert!(
            common::stdout(&o).contains(".TH tessera-secret-"),
            "{args:?}"
        );
    }
    assert!(common::stdout(&common::tessera(&["man", "secret", "put"])).contains("\\-\\-generate"));
    let o = common::tessera(&["man", "secret", "nope"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("in `tessera secret`"), "{}", stderr(&o));
}

/// Output into a pipe whose reader is gone (`tessera ... | head -1` after `head` exits): the
/// command ends as it would have, not with a panic (exit 101).
#[test]
fn a_closed_standard_output_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["collateral", "show", s(dir.path())])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// Output that cannot be written for any other reason than a closed pipe (a full disk under
/// `> policy.toml`) is an I/O error (exit 2, said on stderr), never a success with the output
/// cut short: `/dev/full` refuses every write.
#[test]
fn standard_output_on_a_full_disk_is_an_io_error() {
    for args in [
        &["show", s(&sample("report.bin"))][..],
        &["show", s(&sample("report.bin")), "--json"],
        &["--help"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("writing standard output"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}
