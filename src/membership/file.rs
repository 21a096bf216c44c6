//! The members file in the data directory (`members`): this node's id
//! and every member record it knows, one per line. Rendering and parsing
//! are pure; [`write()`] puts it on disk the way snapshots go: a temporary
//! file, fsynced, renamed over the old one, and the directory fsynced,
//! so a crash leaves the old list or the new one, never half of one.
//!
//! ```text
//! # netdb members: written by the node, do not edit
//! me 0f3c...(40 hex)
//! member <id> <name> <host:port> <state> <incarnation>
//! ```

use crate::membership::member::{is_member_id, Member, State};
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "members";

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// This node's id.
    pub me: String,
    /// Every record.
    pub members: Vec<Member>,
}

/// The file's text.
pub fn render(saved: &Saved) -> String {
    let mut text = String::from("# netdb members: written by the node, do not edit\n");
    text.push_str(&format!("me {}\n", saved.me));
    for m in &saved.members {
        text.push_str(&format!(
            "member {} {} {} {} {}\n",
            m.id, m.name, m.addr, m.state, m.incarnation
        ));
    }
    text
}

/// Parses the file's text; an error names the line.
pub fn parse(text: &str) -> Result<Saved, String> {
    let mut me = None;
    let mut members = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["me", id] if is_member_id(id) => me = Some((*id).to_owned()),
            ["member", id, name, addr, state, incarnation] => {
                let (Some(state), Ok(incarnation)) = (State::parse(state), incarnation.parse())
                else {
                    return Err(format!("line {line_no}: bad state or incarnation"));
                };
                let member = Member {
                    id: (*id).to_owned(),
                    name: (*name).to_owned(),
                    addr: (*addr).to_owned(),
                    state,
                    incarnation,
                };
                member.check().map_err(|e| format!("line {line_no}: {e}"))?;
                members.push(member);
            }
            _ => return Err(format!("line {line_no}: not a members-file line")),
        }
    }
    let me = me.ok_or("no 'me' line")?;
    Ok(Saved { me, members })
}

/// Reads the file in `dir`; `Ok(None)` if there is none yet.
pub fn read(dir: &Path) -> Result<Option<Saved>, String> {
    let path = dir.join(FILE_NAME);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes the file in `dir`, atomically (see the module doc).
pub fn write(dir: &Path, saved: &Saved) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(render(saved).as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(FILE_NAME))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_reads_back_what_was_written() {
        let saved = Saved {
            me: "a".repeat(40),
            members: vec![Member {
                id: "b".repeat(40),
                name: "n2".into(),
                addr: "127.0.0.1:7002".into(),
                state: State::Left,
                incarnation: 3,
            }],
        };
        assert_eq!(parse(&render(&saved)), Ok(saved));
        assert!(parse("me nothex").is_err());
        assert!(parse("me 0000000000000000000000000000000000000000\nmember x").is_err());
    }

    #[test]
    fn a_write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read(dir.path()), Ok(None));
        let saved = Saved {
            me: "c".repeat(40),
            members: Vec::new(),
        };
        write(dir.path(), &saved).expect("written");
        assert_eq!(read(dir.path()), Ok(Some(saved)));
        assert!(!dir.path().join("members.tmp").exists());
    }
}
