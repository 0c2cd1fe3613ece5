//! The policy text sent with a secret: checked with `Policy::load_with_text` and
//! self-contained, its reference files inlined (the broker has no access to the operator's
//! files).

use std::path::Path;

use anyhow::{Context, Result, bail};
use tessera_policy::Policy;

/// The policy text to send: the file as written when it is self-contained; otherwise the
/// policy with its reference files inlined (as TOML), or a refusal.
///
/// The file is read once, and what is checked is what is sent: a second reading could find
/// other text (a pipe such as `/dev/stdin` or `<(...)` is empty the second time).
pub(crate) fn policy_text(path: &Path) -> Result<String> {
    let (mut policy, text) = Policy::load_with_text(path).map_err(|e| match e {
        // Already names the file.
        tessera_policy::PolicyError::Io { .. } => anyhow::Error::from(e),
        other => anyhow::Error::from(other).context(format!("policy {}", path.display())),
    })?;
    if !policy.names_reference_files() {
        return Ok(text);
    }
    policy.inline_references();
    if policy.names_reference_files() {
        bail!(
            "policy {}: it names reference files that cannot be inlined; the broker needs a \
             self-contained policy: write the values into the policy",
            path.display()
        );
    }
    let inlined = policy.to_toml().with_context(|| {
        format!(
            "policy {}: writing it with its references inlined",
            path.display()
        )
    })?;
    Policy::from_text(&inlined).with_context(|| {
        format!(
            "policy {}: the policy with its references inlined does not load",
            path.display()
        )
    })?;
    eprintln!(
        "note: policy {}: its reference files were inlined into the policy sent",
        path.display()
    );
    Ok(inlined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_files_are_inlined() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("p.toml");
        std::fs::write(
            &policy,
            "version = 1\nid = \"r\"\n[tdx]\nmr_td = { file = \"m.txt\" }\nrtmr0 = \"any\"\nrtmr1 = \"any\"\nrtmr2 = \"any\"\nrtmr3 = \"any\"\ndebug = \"must-not\"\n[tdx.tcb]\naccepted_statuses = \"any\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("m.txt"),
            format!("{}  fw\n# c\n", "ab".repeat(48)),
        )
        .unwrap();
        let text = policy_text(&policy).unwrap();
        assert!(!text.contains("m.txt"), "{text}");
        let p = Policy::from_text(&text).unwrap();
        let values = p
            .tdx
            .unwrap()
            .mr_td
            .rule()
            .unwrap()
            .values()
            .unwrap()
            .to_vec();
        assert_eq!(values.len(), 1);
        // A self-contained policy is sent as written.
        let plain = dir.path().join("q.toml");
        let written = "version = 1\nid = \"q\" # comment kept\n[tdx]\nmr_td = \"any\"\nrtmr0 = \"any\"\nrtmr1 = \"any\"\nrtmr2 = \"any\"\nrtmr3 = \"any\"\ndebug = \"must-not\"\n[tdx.tcb]\naccepted_statuses = \"any\"\n";
        std::fs::write(&plain, written).unwrap();
        assert_eq!(policy_text(&plain).unwrap(), written);
        // A missing reference file is refused.
        std::fs::remove_file(dir.path().join("m.txt")).unwrap();
        assert!(policy_text(&policy).is_err());
    }

    /// A policy from a pipe is read once: the text checked is the text sent (a second reading
    /// found the pipe empty, and an empty policy was sent).
    #[test]
    fn a_policy_in_a_pipe_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("policy.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let written = "version = 1\nid = \"q\"\n[tdx]\nmr_td = \"any\"\nrtmr0 = \"any\"\nrtmr1 = \"any\"\nrtmr2 = \"any\"\nrtmr3 = \"any\"\ndebug = \"must-not\"\n[tdx.tcb]\naccepted_statuses = \"any\"\n";
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, written).unwrap())
        };
        let text = policy_text(&fifo).unwrap();
        writer.join().unwrap();
        assert_eq!(text, written);
        // Empty, or not a policy: refused, not sent.
        let empty = dir.path().join("empty.toml");
        std::fs::write(&empty, "").unwrap();
        assert!(policy_text(&empty).is_err());
        assert!(policy_text(dir.path()).is_err());
    }
}
