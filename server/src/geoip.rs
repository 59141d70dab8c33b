//! Approximate location from an IP address (MaxMind / DB-IP City `.mmdb`).
//! No database, an unknown or private address: `None`, never an error.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{geoip2, Reader};
use wfh_protocol::Location;

#[derive(Default)]
pub struct GeoIp {
    reader: Option<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("loaded", &self.reader.is_some())
            .finish()
    }
}

impl GeoIp {
    pub fn disabled() -> Self {
        Self { reader: None }
    }

    pub fn open(path: &Path) -> Result<Self, maxminddb::MaxMindDbError> {
        Ok(Self {
            reader: Some(Reader::open_readfile(path)?),
        })
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<Location> {
        let reader = self.reader.as_ref()?;
        let city: geoip2::City = match reader.lookup(ip).and_then(|r| r.decode()) {
            Ok(Some(city)) => city,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(%ip, error = %e, "GeoIP lookup failed");
                return None;
            }
        };
        let location = Location {
            city: city.city.names.english.map(str::to_owned),
            region: city
                .subdivisions
                .first()
                .and_then(|s| s.names.english)
                .map(str::to_owned),
            country: city.country.names.english.map(str::to_owned),
            country_code: city.country.iso_code.map(str::to_owned),
            latitude: city.location.latitude,
            longitude: city.location.longitude,
            accuracy_radius_km: city.location.accuracy_radius,
        };
        let empty = location.city.is_none() && location.country.is_none() && location.latitude.is_none();
        (!empty).then_some(location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_db() -> GeoIp {
        GeoIp::open(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/GeoIP2-City-Test.mmdb"
        )))
        .unwrap()
    }

    #[test]
    fn known_addresses_resolve_to_their_city() {
        let db = test_db();
        let london = db.lookup("81.2.69.142".parse().unwrap()).unwrap();
        assert_eq!(london.city.as_deref(), Some("London"));
        assert_eq!(london.country_code.as_deref(), Some("GB"));
        let linkoping = db.lookup("89.160.20.112".parse().unwrap()).unwrap();
        assert_eq!(linkoping.city.as_deref(), Some("Linköping"));
    }

    #[test]
    fn unknown_private_or_missing_is_none() {
        assert_eq!(test_db().lookup("10.1.2.3".parse().unwrap()), None);
        assert_eq!(test_db().lookup("127.0.0.1".parse().unwrap()), None);
        assert_eq!(GeoIp::disabled().lookup("81.2.69.142".parse().unwrap()), None);
    }
}
