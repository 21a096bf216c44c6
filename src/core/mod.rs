//! The causal core: names, clocks, hybrid timestamps, version vectors and
//! the one merge rule every replica applies.
//!
//! Pure: no threads, sockets, files or wall clock (`now` is passed in).
//! Nothing here knows about the map, the disk or the network; everything
//! else builds on it.

pub mod clock;
pub mod counter;
pub mod hlc;
pub mod names;
pub mod version;
pub mod vv;
