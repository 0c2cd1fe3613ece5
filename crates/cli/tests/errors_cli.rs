//! Issue 11: error texts a new user can act on — in the CLI's words, naming what was given and
//! what would work. Simulator evidence only, so these run on every clone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use common::{code, json, s, stderr, tempdir, tessera};

/// `tessera sim snp --out DIR`: report.bin, vcek.der, chain.pem, crl.der, root.pem.
fn sim_snp(dir: &Path) {
    let o = tessera(&["sim", "snp", "--out", s(dir)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn empty_certificate_and_crl_files_are_usage_errors() {
    let dir = tempdir("err-empty");
    sim_snp(&dir);
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, b"").unwrap();
    let report = dir.join("report.bin");
    let o = tessera(&["verify", s(&report), "--certs", s(&empty)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("--certs") && e.contains("empty"), "{e}");
    // A PEM file with no certificate block in it.
    let comment = dir.join("comment.pem");
    std::fs::write(&comment, b"# nothing here\n").unwrap();
    let o = tessera(&["verify", s(&report), "--certs", s(&comment)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = tessera(&["verify", s(&report), "--crl", s(&empty)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--crl"), "{}", stderr(&o));
    // With --json the same error is one object on stdout.
    let o = tessera(&["verify", s(&report), "--certs", s(&empty), "--json"]);
    assert_eq!(code(&o), 2);
    let j = json(&o);
    assert_eq!(j["verdict"], "error");
    assert!(
        j["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("--certs"),
        "{j}"
    );
}

/// An option file that does not hold what its option takes (bytes that are no certificate, CRL
/// or collateral) is an input error naming the file (exit 2), read before the evidence is
/// judged; a certificate that parses but is not under a trusted root is a rejection (exit 1).
#[test]
fn option_files_of_the_wrong_kind_are_input_errors_and_foreign_certificates_rejections() {
    let dir = tempdir("err-kind");
    sim_snp(&dir);
    let junk = dir.join("junk.der");
    std::fs::write(&junk, [0x30u8, 0x82, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef]).unwrap();
    let report = dir.join("report.bin");
    for option in ["--certs", "--crl", "--collateral"] {
        let o = tessera(&["verify", s(&report), option, s(&junk)]);
        assert_eq!(code(&o), 2, "{option}: {}", stderr(&o));
        assert!(stderr(&o).contains("junk.der"), "{option}: {}", stderr(&o));
        let o = tessera(&["verify", s(&report), option, s(&junk), "--json"]);
        assert_eq!(code(&o), 2, "{option}");
        let j = json(&o);
        assert_eq!(j["verdict"], "error", "{option}: {j}");
        assert_eq!(j["errors"][0]["check"], "input", "{option}: {j}");
    }
    // Well-formed certificates under the simulator's root, which is not trusted here.
    let o = tessera(&[
        "verify",
        s(&report),
        "--certs",
        s(&dir.join("vcek.der")),
        "--certs",
        s(&dir.join("chain.pem")),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
}

/// A certificate table given with `--certs` whose VCEK entry is padded with zeros, as hosts
/// write it: the VCEK is read (it was once "holds no certificate", exit 2).
#[test]
fn a_certificate_table_with_a_padded_vcek_is_read() {
    let dir = tempdir("err-table");
    sim_snp(&dir);
    // GUID 63da758d-e664-4564-adc5-f4b93be8accd (VCEK), as the table stores it: the bytes in
    // the order the text spells them.
    const VCEK: [u8; 16] = [
        0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
        0xcd,
    ];
    let mut der = std::fs::read(dir.join("vcek.der")).unwrap();
    der.resize(der.len() + 500, 0);
    let mut table = VCEK.to_vec();
    table.extend_from_slice(&48u32.to_le_bytes());
    table.extend_from_slice(&u32::try_from(der.len()).unwrap().to_le_bytes());
    table.extend_from_slice(&[0; 24]);
    table.extend_from_slice(&der);
    let file = dir.join("table.bin");
    std::fs::write(&file, table).unwrap();
    let o = tessera(&[
        "verify",
        s(&dir.join("report.bin")),
        "--certs",
        s(&file),
        "--certs",
        s(&dir.join("chain.pem")),
        "--dangerous-test-root",
        s(&dir.join("root.pem")),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// `sim snp --policy` refuses what the firmware's SNP_LAUNCH_START would (bit 17 clear, bits
/// 63:26 set), rather than write a report `verify` then refuses as `reserved`.
#[test]
fn sim_refuses_a_policy_no_firmware_would_launch() {
    let dir = tempdir("err-simpolicy");
    for policy in ["0x80000", "0x4030000"] {
        let o = tessera(&["sim", "snp", "--out", s(&dir), "--policy", policy]);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(stderr(&o).contains("bit 17"), "{}", stderr(&o));
    }
    let o = tessera(&["sim", "snp", "--out", s(&dir), "--policy", "0xb0000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn a_missing_vcek_says_where_to_get_it() {
    let dir = tempdir("err-vcek");
    sim_snp(&dir);
    let o = tessera(&[
        "verify",
        s(&dir.join("report.bin")),
        "--dangerous-test-root",
        s(&dir.join("root.pem")),
        "--json",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["errors"][0]["check"], "endorsement", "{j}");
    let hint = j["errors"][0]["hint"].as_str().unwrap();
    // The simulator's CHIP_ID is a0a1..bf then 80..9f; its REPORTED_TCB is in the query.
    assert!(hint.contains("/vcek/v1/Genoa/a0a1a2a3"), "{hint}");
    assert!(
        hint.contains("blSPL=") && hint.contains("ucodeSPL=") && hint.contains("--certs"),
        "{hint}"
    );
    // Human output prints the same hint.
    let o = tessera(&[
        "verify",
        s(&dir.join("report.bin")),
        "--dangerous-test-root",
        s(&dir.join("root.pem")),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("hint: get this chip's VCEK"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn enum_flags_list_their_values() {
    let dir = tempdir("err-enum");
    sim_snp(&dir);
    let o = tessera(&["verify", s(&dir.join("report.bin")), "--product", "rome"]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(
        e.contains("milan") && e.contains("genoa") && e.contains("turin"),
        "{e}"
    );
    // Any ASCII case of a product is accepted.
    let o = tessera(&[
        "sim",
        "snp",
        "--out",
        s(&dir.join("milan")),
        "--product",
        "Milan",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = tessera(&[
        "sim",
        "tdx",
        "--out",
        s(&dir.join("t")),
        "--tcb-status",
        "Outdated",
    ]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    for status in ["UpToDate", "OutOfDate", "SWHardeningNeeded", "Revoked"] {
        assert!(e.contains(status), "{status} missing: {e}");
    }
    // And --help lists them.
    let o = tessera(&["sim", "tdx", "--help"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("OutOfDateConfigurationNeeded"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = tessera(&["verify", "--help"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("possible values: milan, genoa, turin"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn policy_paths_say_what_they_are() {
    let dir = tempdir("err-policy");
    sim_snp(&dir);
    let report = dir.join("report.bin");
    // A directory given as the policy.
    let o = tessera(&["verify", s(&report), "--policy", s(&dir)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));
    // A reference file that is not where the policy says: relative to the policy's folder, and
    // the path that was tried.
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let policy = policies.join("p.toml");
    std::fs::write(
        &policy,
        "version = 1\nid = \"p\"\n\n[snp]\nmeasurement = { file = \"refs/m.txt\" }\n\
         debug = \"any\"\nmin_tcb = \"any\"\nsigner = \"any\"\nvmpl = \"any\"\n\
         revocation = \"if-given\"\n",
    )
    .unwrap();
    let o = tessera(&["verify", s(&report), "--policy", s(&policy)]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(
        e.contains("relative to the policy's folder")
            && e.contains(&policies.join("refs/m.txt").display().to_string()),
        "{e}"
    );
    // A policy named by its bare file name: the folder is said as `.`, not left empty.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(&policies)
        .args(["policy", "check", "p.toml"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("relative to the policy's folder .)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_crls_name_the_cli_flag() {
    let dir = tempdir("err-crl");
    let o = tessera(&["sim", "tdx", "--out", s(&dir)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("collateral.json")).unwrap()).unwrap();
    bundle["pck_crl"] = serde_json::Value::Null;
    let partial = dir.join("partial.json");
    std::fs::write(&partial, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let (quote, root) = (dir.join("quote.bin"), dir.join("root.pem"));
    let args = [
        "verify",
        s(&quote),
        "--collateral",
        s(&partial),
        "--dangerous-test-root",
        s(&root),
        "--json",
    ];
    let o = tessera(&args);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["errors"][0]["check"], "revocation");
    let message = j["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("--allow-missing-crls") && !message.contains("allow_missing_crls"),
        "{message}"
    );
    let mut allowed = args.to_vec();
    allowed.push("--allow-missing-crls");
    let o = tessera(&allowed);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// A 4xx without the broker's error body (a proxy's, an ingress's during a redeploy) is not
/// the broker's refusal: `get-secret` exits 2 (worth retrying), not 1; with the broker's body
/// it exits 1.
#[test]
fn get_secret_tells_a_proxys_4xx_from_the_brokers() {
    use std::io::{Read as _, Write as _};
    let dir = tempdir("err-proxy");
    for (body, expected) in [
        ("<html>403 Forbidden</html>", 2),
        (
            r#"{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.4","title":"Forbidden"}"#,
            2,
        ),
        (
            r#"{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"denied"}"#,
            1,
        ),
    ] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            // Every connection the client makes (it retries the handshake) gets the answer.
            listener.set_nonblocking(false).unwrap();
            for conn in listener.incoming().take(8) {
                let Ok(mut conn) = conn else { break };
                let mut buf = [0u8; 8192];
                let _ = conn.read(&mut buf);
                let answer = format!(
                    "HTTP/1.1 403 Forbidden\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        let o = tessera(&[
            "get-secret",
            &format!("http://{addr}"),
            "default/key/one",
            "--evidence-cmd",
            "true",
            "--out",
            s(&dir.join("secret")),
        ]);
        assert_eq!(code(&o), expected, "{body}: {}", stderr(&o));
        drop(server);
    }
}

/// A URL refused for its `user:password@` is named without the password; `--pcs-api-key` and
/// `--pcs-api-key-file` together are a usage error, and a key file that holds no key is
/// refused without echoing it.
#[test]
fn credentials_stay_out_of_error_messages() {
    let dir = tempdir("err-creds");
    sim_snp(&dir);
    let o = tessera(&[
        "get-secret",
        "https://admin:s3cret@kbs.example",
        "team-a/key/db",
        "--evidence-cmd",
        "true",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("<redacted>@kbs.example"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("s3cret"), "{}", stderr(&o));
    let o = tessera(&[
        "secret",
        "list",
        "--url",
        "https://admin:s3cret@kbs.example",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("user information"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("s3cret"), "{}", stderr(&o));

    let report = dir.join("report.bin");
    let key = dir.join("pcs.key");
    std::fs::write(&key, "two words\n").unwrap();
    let o = tessera(&[
        "verify",
        s(&report),
        "--fetch",
        "--pcs-api-key",
        "k",
        "--pcs-api-key-file",
        s(&key),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    let o = tessera(&[
        "collateral",
        "fetch",
        "--fmspc",
        "00906ED50000",
        "--out",
        s(&dir.join("bundle")),
        "--cache-dir",
        s(&dir.join("cache")),
        "--pcs-api-key-file",
        s(&key),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a subscription key"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("two words"), "{}", stderr(&o));
}
