//! HTML for the pages: escaping and the page frame. Every text that comes
//! from a file or a request goes through [`esc`] (or [`attr`]); nothing is
//! inserted raw.

use std::fmt::Write;

/// `text` safe inside an element or a quoted attribute.
pub use lvc_workflow::html::escape as esc;

/// A path component of a URL (ids keep their `/`).
pub fn url_path(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A value in a URL query.
pub fn url_query(value: &str) -> String {
    url_path(value).replace('/', "%2F")
}

/// A figure or an en dash.
pub fn figure(value: Option<f64>, digits: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "–".to_string(),
    }
}

/// Seconds as h:mm:ss.
pub fn clock(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() => {
            let s = s.max(0.0).round() as u64;
            format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
        _ => "–".to_string(),
    }
}

/// A whole page: `page` names the script's entry (`data-page`), `data` is
/// JSON for it (escaped for a `<script type="application/json">`).
pub fn page(title: &str, page: &str, csrf: &str, body: &str, data: &serde_json::Value) -> String {
    let json = data.to_string().replace("</", "<\\/").replace("<!--", "<\\!--");
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="lvc-csrf" content="{csrf}">
<title>{title} · lvc</title>
<link rel="stylesheet" href="/assets/style.css">
<link rel="stylesheet" href="/assets/uPlot.min.css">
</head>
<body data-page="{page}">
<header><a class="brand" href="/">lvc</a>
<nav><a href="/">Home</a><a href="/new/dataset">New dataset</a><a href="/new/run">New run</a><a href="/infer">Inference</a><a href="/jobs">Jobs</a></nav></header>
<main>
{body}
</main>
<script type="application/json" id="page-data">{json}</script>
<script src="/assets/uPlot.iife.min.js"></script>
<script src="/assets/app.js"></script>
</body></html>
"#,
        csrf = esc(csrf),
        title = esc(title),
        page = esc(page),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_script_ends() {
        assert_eq!(esc("<b a=\"1\">&'"), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
        let p =
            page("<x>", "home", "c", "", &serde_json::json!({"s": "</script><script>alert(1)"}));
        assert!(!p.contains("</script><script>alert"));
        assert!(p.contains("&lt;x&gt;"));
        assert_eq!(url_path("runs/a b"), "runs/a%20b");
        assert_eq!(url_query("runs/a"), "runs%2Fa");
        assert_eq!(clock(Some(3725.0)), "1:02:05");
        assert_eq!(figure(Some(f64::NAN), 3), "–");
    }
}
