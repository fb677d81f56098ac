//! udev's string encodings, shared by the disk and content renderers (a leaf, so neither
//! imports the other back).

/// Replaces white space runs by `_` and other unsafe characters too, like udev's
/// `udev_replace_whitespace` + `udev_replace_chars`.
pub(super) fn udev_safe(s: &str) -> String {
    let words: Vec<&str> = s.split_whitespace().collect();
    words
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// udev's `encode_devnode_name`: `\xNN` for anything outside `[A-Za-z0-9#+-.:=@_]`.
pub(super) fn udev_enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"#+-.:=@_".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}
