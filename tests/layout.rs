//! The crate's layout, as `src/lib.rs` describes it: no two top-level
//! modules import each other (directly or round a longer loop), and the
//! pure core touches no thread, socket, file or clock.
//!
//! Read from the sources: a `crate::MODULE` path outside a comment, in
//! code that is not a test, is an import of MODULE.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The file's code that is not a test: up to its test module, without
/// comment lines. Files that hold only tests give nothing.
fn code(path: &Path) -> Vec<String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "tests.rs" || name == "testing.rs" {
        return Vec::new();
    }
    let text = std::fs::read_to_string(path).expect("read source");
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(str::to_owned)
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file belongs to (`main` for main.rs).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// Top-level module -> the top-level modules it imports.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in sources(&src()) {
        let from = module_of(&path);
        for line in code(&path) {
            for part in line.split("crate::").skip(1) {
                let to: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !to.is_empty() && to != from && to != "proptest_config" {
                    graph.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    graph
}

#[test]
fn no_two_modules_import_each_other() {
    let graph = imports();
    // Depth-first search for a path back to the start.
    for start in graph.keys() {
        let mut stack: Vec<Vec<&str>> = vec![vec![start.as_str()]];
        while let Some(path) = stack.pop() {
            let last = *path.last().expect("non-empty");
            for next in graph.get(last).into_iter().flatten() {
                assert!(
                    next != start,
                    "import cycle: {} -> {start}",
                    path.join(" -> ")
                );
                if !path.contains(&next.as_str()) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
}

#[test]
fn the_pure_core_touches_no_thread_socket_file_or_clock() {
    let forbidden = [
        "std::thread",
        "std::net",
        "std::fs",
        "SystemTime",
        "Instant",
        "crossbeam",
    ];
    for folder in ["core", "store", "placement"] {
        for path in sources(&src().join(folder)) {
            for line in code(&path) {
                for word in forbidden {
                    assert!(
                        !line.contains(word),
                        "{} uses {word}: {line}",
                        path.display()
                    );
                }
            }
        }
    }
}
