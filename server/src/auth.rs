//! Who may talk to the server. Without a token it listens on loopback only
//! and answers only requests whose `Host` names that loopback address (a
//! page elsewhere cannot reach it through DNS rebinding). With `--token`
//! every request but the login page and the assets carries the token, as
//! `Authorization: Bearer TOKEN` or as the `lvc_token` cookie the login page
//! sets (HttpOnly, SameSite=Strict). State-changing requests (POST) from a
//! browser must come from the server's own pages: a cross-site `Origin` or
//! `Sec-Fetch-Site` is refused, and a cookie-authenticated POST must carry
//! the page's CSRF token in `X-LVC-CSRF`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::State;

/// The cookie the login page sets.
pub const COOKIE: &str = "lvc_token";
/// The header a cookie-authenticated POST carries.
pub const CSRF_HEADER: &str = "x-lvc-csrf";

pub struct Auth {
    pub token: Option<String>,
    /// Embedded in every page; required with the cookie on POSTs.
    pub csrf: String,
    addr: SocketAddr,
}

/// 16 random bytes as hex, from the kernel.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    if bytes == [0u8; 16] {
        // No /dev/urandom: the clock and the pid still differ per server.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..16].copy_from_slice(&(t ^ (u128::from(std::process::id()) << 64)).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// How a request proved itself.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Credential {
    /// No token is set.
    Open,
    Bearer,
    Cookie,
    None,
}

impl Auth {
    pub fn new(token: Option<String>, addr: SocketAddr) -> Auth {
        Auth { token, csrf: random_hex(), addr }
    }

    pub fn credential(&self, headers: &HeaderMap) -> Credential {
        let Some(token) = &self.token else { return Credential::Open };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer.is_some_and(|b| same(b.trim(), token)) {
            return Credential::Bearer;
        }
        if cookie_value(headers, COOKIE).is_some_and(|c| same(c, token)) {
            return Credential::Cookie;
        }
        Credential::None
    }

    /// Whether `host` names this server: with a token any name (the server
    /// is meant to be reached from elsewhere), without one a loopback name.
    fn host_allowed(&self, host: Option<&str>) -> bool {
        if self.token.is_some() {
            return true;
        }
        let Some(host) = host else { return false };
        let port = self.addr.port();
        let name = host.strip_suffix(&format!(":{port}")).unwrap_or(host);
        matches!(name, "localhost" | "127.0.0.1" | "[::1]")
            || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The cookie the login page sets for a correct token.
    pub fn login_cookie(&self, given: &str) -> Option<String> {
        let token = self.token.as_ref()?;
        same(given.trim(), token)
            .then(|| format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"))
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// The middleware in front of every route.
pub async fn guard(Extract(state): Extract<State>, request: Request<Body>, next: Next) -> Response {
    let auth = &state.auth;
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !auth.host_allowed(host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only requests addressed to its loopback address",
        );
    }
    let path = request.uri().path();
    let public = path == "/login" || path.starts_with("/assets/");
    let credential = auth.credential(headers);
    if credential == Credential::None && !public {
        return if path.starts_with("/api/") {
            refuse(
                StatusCode::UNAUTHORIZED,
                "this server needs its token: `Authorization: Bearer TOKEN`, or log in at /login",
            )
        } else {
            Redirect::to("/login").into_response()
        };
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let origin_ok = match (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), host) {
            (None, _) => true,
            (Some(origin), Some(host)) => {
                origin == format!("http://{host}") || origin == format!("https://{host}")
            }
            (Some(_), None) => false,
        };
        let site_ok = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|s| s == "same-origin" || s == "none");
        if !origin_ok || !site_ok {
            return refuse(StatusCode::FORBIDDEN, "cross-site requests are refused");
        }
        let csrf_ok = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| same(v, &auth.csrf));
        if credential == Credential::Cookie && !csrf_ok && path != "/login" {
            return refuse(StatusCode::FORBIDDEN, "missing or wrong X-LVC-CSRF header (send the token of the page, or use a bearer token)");
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn credentials_and_hosts() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let open = Auth::new(None, addr);
        assert_eq!(open.credential(&HeaderMap::new()), Credential::Open);
        assert!(open.host_allowed(Some("127.0.0.1:8080")));
        assert!(open.host_allowed(Some("localhost:8080")));
        assert!(!open.host_allowed(Some("evil.example:8080")));
        assert!(!open.host_allowed(None));
        let locked = Auth::new(Some("0123456789abcdef".into()), addr);
        assert_eq!(locked.credential(&HeaderMap::new()), Credential::None);
        assert_eq!(
            locked.credential(&headers(&[("authorization", "Bearer 0123456789abcdef")])),
            Credential::Bearer
        );
        assert_eq!(
            locked.credential(&headers(&[("cookie", "a=b; lvc_token=0123456789abcdef")])),
            Credential::Cookie
        );
        assert_eq!(locked.credential(&headers(&[("cookie", "lvc_token=wrong")])), Credential::None);
        assert!(locked.login_cookie("nope").is_none());
        assert!(locked.login_cookie("0123456789abcdef").unwrap().contains("HttpOnly"));
        assert_eq!(open.csrf.len(), 32);
    }
}
