//! A node run with a script piped to stdin (`netdb node4 ADDR peers.txt <
//! script.txt`), as a batch job joining a running cluster.

mod common;

use common::{
    assert_no_panic, cluster, on_free_ports, run_netdb, Finished, Input, PortTaken,
    CONVERGE_TIMEOUT, FAST_SYNC_MS,
};
use std::ffi::OsString;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

/// Runs `netdb <name> <fresh addr> <peers> < script`, again on another
/// port if the one picked was taken.
fn run_script(name: &str, peers: &Path, script: &Path) -> Finished {
    on_free_ports(1, |addrs| {
        let args: Vec<OsString> = vec![
            name.into(),
            addrs[0].to_string().into(),
            peers.into(),
            "--sync-interval-ms".into(),
            "100".into(),
        ];
        let stdin = File::open(script).expect("open the script");
        let done = run_netdb(&args, Input::File(stdin), Duration::from_secs(20));
        if done.stderr.iter().any(|l| l.contains("port is in use")) {
            Err(PortTaken {
                stderr: done.stderr,
            })
        } else {
            Ok(done)
        }
    })
}

#[test]
fn a_piped_script_joins_a_running_cluster() {
    let mut c = cluster(3, FAST_SYNC_MS);
    assert_eq!(c[0].cmd("put existing from-n1"), "Value stored.");
    c.wait_all("get existing", "Value: from-n1", CONVERGE_TIMEOUT);
    let script = c.dir.path().join("script.txt");
    std::fs::write(
        &script,
        "# load the catalogue\n\
         put apple red fruit\n\
         put \"banana split\" \"yellow\\tsweet\"\n\
         get apple\n\
         get \"banana split\"\n\
         \n\
         put cherry dark\n\
         delete cherry\n\
         get cherry\n\
         frobnicate\n\
         put   temp   1\n\
         delete temp\n\
         put final 42\n\
         keys\n",
    )
    .expect("write the script");

    let done = run_script("node4", &c.peers_file, &script);
    assert_eq!(
        done.stdout,
        [
            "Value stored.",
            "Value stored.",
            "Value: red fruit",
            "Value: \"yellow\\tsweet\"",
            "Value stored.",
            "Key deleted.",
            "Key not found.",
            "Error: unknown command 'frobnicate' (commands: put, get, delete, keys, status, sync, help, quit)",
            "Value stored.",
            "Key deleted.",
            "Value stored.",
            "apple",
            "\"banana split\"",
            "final",
        ],
        "stderr: {:?}",
        done.stderr
    );
    assert!(
        done.status.success(),
        "{:?}: {:?}",
        done.status,
        done.stderr
    );
    assert!(
        done.stderr
            .iter()
            .any(|l| l.ends_with(" [node4] final push: 3 of 3 peers acknowledged")),
        "{:?}",
        done.stderr
    );
    assert_no_panic(&done.stderr);
    // The final push was acknowledged by all three before node4 exited, so
    // its writes are there now, and stay.
    c.assert_all("get apple", "Value: red fruit");
    c.assert_all("get \"banana split\"", "Value: \"yellow\\tsweet\"");
    c.assert_all("get final", "Value: 42");
    c.assert_all("get cherry", "Key not found.");
    c.assert_all("get temp", "Key not found.");
    c.sync_all();
    c.assert_all("get apple", "Value: red fruit");
    c.assert_all("get existing", "Value: from-n1");
}

#[test]
fn a_script_that_quits_stops_there() {
    let c = cluster(1, FAST_SYNC_MS);
    let script = c.dir.path().join("script.txt");
    std::fs::write(&script, "put a 1\nquit\nput b 2\nget a\n").expect("write the script");
    let done = run_script("batch", &c.peers_file, &script);
    assert_eq!(done.stdout, ["Value stored.", "Goodbye!"]);
    assert!(done.status.success(), "{:?}", done.stderr);
}

#[test]
fn a_long_script_answers_every_line_in_order() {
    // Long enough to be cut into several batches for the store thread,
    // with errors and non-data commands in the middle of batches.
    let c = cluster(1, FAST_SYNC_MS);
    let mut script = String::new();
    let mut expected = Vec::new();
    let mut deleted = std::collections::HashSet::new();
    for i in 0..3000 {
        script.push_str(&format!("put key{i} value {i}\n"));
        expected.push("Value stored.".to_string());
        script.push_str(&format!("get key{}\n", i / 2));
        expected.push(if deleted.contains(&(i / 2)) {
            "Key not found.".to_string()
        } else {
            format!("Value: value {}", i / 2)
        });
        if i % 700 == 0 {
            script.push_str("bogus\n");
            expected.push(
                "Error: unknown command 'bogus' (commands: put, get, delete, keys, status, sync, help, quit)"
                    .into(),
            );
        }
        if i % 1000 == 999 {
            script.push_str(&format!("delete key{i}\nget key{i}\n"));
            expected.push("Key deleted.".into());
            expected.push("Key not found.".into());
            deleted.insert(i);
        }
        if i == 1500 {
            script.push_str("sync\n");
            expected.push("Synced with 1 of 1 peers.".into());
        }
    }
    let path = c.dir.path().join("long.txt");
    std::fs::write(&path, script).expect("write the script");
    let done = run_script("batch", &c.peers_file, &path);
    assert!(done.status.success(), "{:?}", done.stderr);
    assert_eq!(done.stdout.len(), expected.len());
    for (i, (got, want)) in done.stdout.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "reply {i}");
    }
}
