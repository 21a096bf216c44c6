//! Starting a node from a config file (`--config FILE`): the file's
//! settings apply, the command line wins over them, and a mistake in the
//! file is one line naming the file, the line and the key.

mod common;

use common::{dead_addr, run_netdb, temp_dir, write_peers_file, Finished, Input};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs netdb with `args` and `status` on stdin.
fn run_status(args: &[&dyn AsRef<OsStr>]) -> Finished {
    let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    run_netdb(
        &args,
        Input::Bytes(b"status\n".to_vec()),
        Duration::from_secs(20),
    )
}

/// Writes `text` as `node.toml` in `dir`; returns its path.
fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("node.toml");
    std::fs::write(&path, text).expect("write the config file");
    path
}

#[test]
fn a_node_starts_from_its_config_file_and_the_command_line_wins() {
    let dir = temp_dir();
    // A peer that is down: the node lists it, and its final push fails.
    let peer = dead_addr();
    write_peers_file(&dir.path().join("peers.txt"), &[peer]);
    let config = config_file(
        dir.path(),
        "# node n1, one peer\n\
         name = \"n1\"\n\
         listen = \"127.0.0.1:0\"\n\
         peers = \"peers.txt\"   # beside this file\n\
         sync-interval-ms = 250\n\
         in-memory = true\n",
    );

    let done = run_status(&[&"--config", &config]);
    assert_ran_as(&done, "n1", 250);
    assert!(
        done.stdout
            .iter()
            .any(|l| l.starts_with(&format!("peer {peer}: "))),
        "{:?}",
        done.stdout
    );

    // The command line's name and interval win over the file's.
    let done = run_status(&[&"--config", &config, &"n2", &"--sync-interval-ms", &"300"]);
    assert_ran_as(&done, "n2", 300);
}

/// Asserts a clean run as node `name` syncing every `ms`, as its status
/// and its startup log line say.
fn assert_ran_as(done: &Finished, name: &str, ms: u64) {
    assert!(done.status.success(), "{:?}", done.stderr);
    assert!(
        done.stdout[0].starts_with(&format!("node {name} listening on 127.0.0.1:")),
        "{:?}",
        done.stdout
    );
    let listening = format!(" [{name}] listening on ");
    let syncing = format!("syncing every {ms} ms");
    assert!(
        done.stderr
            .iter()
            .any(|l| l.contains(&listening) && l.ends_with(&syncing)),
        "{:?}",
        done.stderr
    );
}

#[test]
fn a_mistake_in_the_config_file_names_the_line_and_the_key() {
    let dir = temp_dir();
    for (text, want) in [
        (
            "name = \"n1\"\nlisten = \"127.0.0.1:0\"\n\nsync-intervall-ms = 250\n",
            "line 4: unknown key 'sync-intervall-ms'",
        ),
        (
            "name = \"n1\"\nmax-clients = \"many\"\n",
            "line 2: max-clients: invalid type: string \"many\", expected usize",
        ),
    ] {
        let config = config_file(dir.path(), text);
        let done = run_status(&[&"--config", &config]);
        assert_eq!(
            done.stderr,
            [format!(
                "netdb: error: config file {}, {want}",
                config.display()
            )]
        );
        assert_eq!(done.status.code(), Some(1));
        assert!(done.stdout.is_empty(), "{:?}", done.stdout);
    }
}
