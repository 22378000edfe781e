//! Znode path syntax: validation (reference D.1) and parent/name splitting.
//!
//! ZooKeeper validates paths as Java strings, i.e. as UTF-16 code units; a
//! Rust `char` outside the Basic Multilingual Plane is a surrogate pair in
//! Java and so always rejected (behaviour 13).

use zab_wire::jute::ErrorCode;

/// The path of the root znode.
pub const ROOT: &str = "/";
/// Built-in nodes that can never be deleted (reference D.2, delete).
pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

/// True for the four built-in paths ZooKeeper calls "special" (`/` included).
pub fn is_special(path: &str) -> bool {
    matches!(path, ROOT | ZOOKEEPER | QUOTA | CONFIG)
}

/// Characters ZooKeeper refuses in a path (behaviour 12): controls, the C1
/// range, the surrogate and private-use block, and U+FFF0–U+FFFF.
fn is_bad_char(c: char) -> bool {
    let u = c as u32;
    u == 0
        || (0x01..=0x1f).contains(&u)
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        // Non-BMP: a surrogate pair (U+D800–U+DFFF units) in Java (behaviour 13).
        || u > 0xffff
}

/// ZooKeeper's `PathUtils.validatePath`: BadArguments (-8) unless `path` is
/// absolute, has no empty, `.` or `..` component, no trailing `/` (except the
/// root itself) and no forbidden character (reference D.1, behaviours 11–14).
pub fn validate(path: &str) -> Result<(), ErrorCode> {
    if !path.starts_with('/') {
        return Err(ErrorCode::BadArguments);
    }
    if path == ROOT {
        return Ok(());
    }
    for component in path[1..].split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return Err(ErrorCode::BadArguments);
        }
        if component.chars().any(is_bad_char) {
            return Err(ErrorCode::BadArguments);
        }
    }
    Ok(())
}

/// Splits `path` at its last `/` into (parent, name), the parent of a
/// top-level node being `/`. `None` if there is no `/` at all. This is the
/// lookup ZooKeeper does *before* full validation (behaviour 11), so the
/// parent of `/a//b` is `/a/` (which does not exist: NoNode).
pub fn split(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    let parent = if i == 0 { ROOT } else { &path[..i] };
    Some((parent, &path[i + 1..]))
}

/// The full path of child `name` under `parent`.
pub fn join(parent: &str, name: &str) -> String {
    let mut s = String::with_capacity(parent.len() + 1 + name.len());
    s.push_str(parent);
    if parent != ROOT {
        s.push('/');
    }
    s.push_str(name);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/.x",
            "/..x",
            "/x.",
            "/a\u{feff}",
            "/\u{200b}",
            "/\u{a0}",
            "/\u{ffef}",
        ] {
            assert_eq!(validate(p), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn invalid_paths() {
        for p in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a\0",
            "/\u{1f}",
            "/\u{7f}",
            "/\u{9f}",
            "/\u{e000}",
            "/\u{f8ff}",
            "/\u{fff0}",
            "/\u{fffd}",
            "/\u{1f600}",
        ] {
            assert_eq!(validate(p), Err(ErrorCode::BadArguments), "{p:?}");
        }
    }

    #[test]
    fn split_and_join() {
        assert_eq!(split("/a"), Some(("/", "a")));
        assert_eq!(split("/a/b"), Some(("/a", "b")));
        assert_eq!(split("/a//b"), Some(("/a/", "b")));
        assert_eq!(split("/a/"), Some(("/a", "")));
        assert_eq!(split("/"), Some(("/", "")));
        assert_eq!(split("a"), None);
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
