//! Placeholder for the checksummed record framing (being written).

/// Bytes before a record's body.
pub const HEADER_LEN: usize = 12;

/// Appends one record.
pub fn encode(body: &[u8], out: &mut Vec<u8>) {
    let len = (body.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}
