//! Building the few URLs the pages link to: percent-encoding a value for a query
//! string, replacing one parameter of the current query (paging keeps the filters), and
//! checking that a "back" address from a request stays on this site.

/// Percent-encodes `s` for use as a query value or path segment: everything but the
/// unreserved characters of RFC 3986 is encoded, byte by byte of its UTF-8.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?query` with the parameter `key` set to `value` (encoded) and every other
/// parameter of `query` (already encoded, without `?`) kept in its order.
pub fn with_param(path: &str, query: &str, key: &str, value: &str) -> String {
    let mut out = String::from(path);
    out.push('?');
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let name = pair.split('=').next().unwrap_or(pair);
        if name != key {
            out.push_str(pair);
            out.push('&');
        }
    }
    out.push_str(&encode(key));
    out.push('=');
    out.push_str(&encode(value));
    out
}

/// `back` when it is a path on this site, else `/`. A "back" parameter comes from the
/// request, so without this check a crafted link (`back=//evil.example`) would send a
/// signed-in user elsewhere after switching language.
pub fn safe_back(back: &str) -> &str {
    let local = back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains('\\')
        && !back.chars().any(char::is_control);
    if local { back } else { "/" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_reserved_and_non_ascii() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(encode("sr-Cyrl"), "sr-Cyrl");
    }

    #[test]
    fn replaces_one_parameter_and_keeps_the_rest() {
        assert_eq!(
            with_param("/records", "status=draft&page=3&q=%C4%90", "page", "4"),
            "/records?status=draft&q=%C4%90&page=4"
        );
        assert_eq!(with_param("/records", "", "page", "2"), "/records?page=2");
        // A parameter whose name merely starts with the key is kept.
        assert_eq!(
            with_param("/r", "pages=1&page", "page", "2"),
            "/r?pages=1&page=2"
        );
    }

    #[test]
    fn back_stays_on_this_site() {
        assert_eq!(safe_back("/records?status=draft"), "/records?status=draft");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "records",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_back(bad), "/", "{bad:?}");
        }
    }
}
