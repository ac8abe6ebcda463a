//! Who is on the other end of a request, as sign-in throttling counts them: the socket's peer,
//! or, when that peer is a proxy named in `CAREHUB_TRUSTED_PROXIES`, the address that proxy
//! put in `X-Forwarded-For`. A header from anyone else is ignored, so a client cannot pick the
//! address it is counted under.

use std::future::{Ready, ready};
use std::net::IpAddr;
use std::str::FromStr as _;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpRequest, web};
use ipnet::IpNet;

use carehub_domain::identity::ClientAddress;

use crate::state::AppState;

/// The proxies whose `X-Forwarded-For` is believed: addresses and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list of addresses (`10.0.0.5`, `::1`) and networks (`10.0.0.0/8`).
    /// Empty: none.
    ///
    /// # Errors
    /// When an entry is neither.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| {
                        format!("`{entry}` is not an IP address or network (e.g. `10.0.0.0/8`)")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: `peer` itself unless it is trusted; else the rightmost
    /// address of `X-Forwarded-For` that is not a trusted proxy (each proxy appends the
    /// address it was reached from, so everything left of that is the client's own say).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:5678`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(ip);
    }
    std::net::SocketAddr::from_str(hop).ok().map(|s| s.ip())
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The caller's address as throttling counts it; `None` when the socket has no peer address
/// (a Unix socket, or a test request).
#[derive(Debug, Clone, Copy)]
pub struct Client(pub Option<ClientAddress>);

impl FromRequest for Client {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let proxies = request
            .app_data::<web::Data<AppState>>()
            .map(|state| &state.trusted_proxies);
        let address = request.peer_addr().map(|peer| {
            let ip = match proxies {
                Some(proxies) => proxies.client_ip(peer.ip(), request.headers()),
                None => peer.ip(),
            };
            ClientAddress::new(ip)
        });
        ready(Ok(Self(address)))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(value).expect("header"),
            );
        }
        headers
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let proxies = TrustedProxies::default();
        assert_eq!(
            proxies.client_ip(ip("203.0.113.9"), &forwarded(&["198.51.100.1"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_name_its_address() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        assert_eq!(
            proxies.client_ip(ip("203.0.113.9"), &forwarded(&["198.51.100.1"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_it_was_reached_from() {
        let proxies = TrustedProxies::parse("10.0.0.5, 10.1.0.0/16").expect("valid");
        // The client claims 1.1.1.1; the first proxy appended the real address; the second
        // proxy appended the first.
        let headers = forwarded(&["1.1.1.1, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(
            proxies.client_ip(ip("10.0.0.5"), &headers),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_trusted_proxy_without_a_header_is_the_client() {
        let proxies = TrustedProxies::parse("127.0.0.1").expect("valid");
        assert_eq!(
            proxies.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        assert_eq!(
            proxies.client_ip(ip("127.0.0.1"), &forwarded(&["not an address"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn ports_and_mapped_addresses_are_understood() {
        let proxies = TrustedProxies::parse("192.0.2.1").expect("valid");
        assert_eq!(
            proxies.client_ip(ip("::ffff:192.0.2.1"), &forwarded(&["[2001:db8::7]:4711"])),
            ip("2001:db8::7")
        );
        assert_eq!(
            proxies.client_ip(ip("192.0.2.1"), &forwarded(&["198.51.100.7:80"])),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn proxies_are_addresses_or_networks() {
        assert!(TrustedProxies::parse("").expect("empty").0.is_empty());
        assert_eq!(
            TrustedProxies::parse("::1,10.0.0.0/8")
                .expect("valid")
                .0
                .len(),
            2
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.example").is_err());
    }
}
