//! A network namespace of the test's own, joined to this machine by a
//! veth pair on TEST-NET addresses (192.0.2.0/24, which no real network
//! routes): a source address that is not loopback, for the protected-mode
//! tests, without touching any address outside the machine. Needs root
//! and `ip`; removed (namespace, pair and address) when dropped.

use std::process::Command;

/// The namespace and its link to this machine.
pub struct Netns {
    name: String,
    host_if: String,
    /// This machine's side of the pair.
    pub host_ip: String,
    /// The namespace's side.
    pub inner_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Makes a namespace with `192.0.2.<4*slot+2>` inside and
    /// `192.0.2.<4*slot+1>` on this machine's side (a /30 of their own,
    /// so tests in parallel use separate ones); `Err` says why it
    /// cannot (not root, no `ip`, no namespaces), for the test to skip.
    pub fn create(slot: u8) -> Result<Netns, String> {
        if !super::skip::is_root() {
            return Err("needs root to make a network namespace".into());
        }
        let tag = format!("{}{slot}", std::process::id() % 100_000);
        let ns = Netns {
            name: format!("netdb-t{tag}"),
            host_if: format!("ndh{tag}"),
            host_ip: format!("192.0.2.{}", 4 * u16::from(slot % 60) + 1),
            inner_ip: format!("192.0.2.{}", 4 * u16::from(slot % 60) + 2),
        };
        let inner_if = format!("ndi{tag}");
        ip(&["netns", "add", &ns.name])?;
        // From here on, drop removes what was made.
        let steps: [&[&str]; 7] = [
            &[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &inner_if,
            ],
            &["link", "set", &inner_if, "netns", &ns.name],
            &[
                "addr",
                "add",
                &format!("{}/30", ns.host_ip),
                "dev",
                &ns.host_if,
            ],
            &["link", "set", &ns.host_if, "up"],
            &[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{}/30", ns.inner_ip),
                "dev",
                &inner_if,
            ],
            &["-n", &ns.name, "link", "set", &inner_if, "up"],
            &["-n", &ns.name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            ip(step)?;
        }
        Ok(ns)
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Opens a connection from the namespace to `addr` as a plain TCP
    /// peer would (the peer magic and a `Hello`, which a node that let it
    /// in would answer: a `Welcome`, or `SecretRequired`) and returns how
    /// many bytes the node answered before closing, as the script printed
    /// it (`"0"`: it answered nothing).
    pub fn peer_opening_answer(&self, addr: std::net::SocketAddr) -> String {
        let hello: String = super::peer::greeting("outsider")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let script = format!(
            "import socket\ns=socket.create_connection(('{}',{}),timeout=5)\n\
             s.sendall(bytes.fromhex('{hello}'))\ntry:\n    d=s.recv(100)\nexcept Exception:\n    d=b''\n\
             print(len(d))",
            addr.ip(),
            addr.port()
        );
        let out = self
            .command("python3")
            .args(["-c", &script])
            .output()
            .expect("python3 runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
