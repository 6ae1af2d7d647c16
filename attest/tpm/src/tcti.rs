//! TCTI strings: which transport reaches the TPM (TCG TSS 2.0 TCTI specification, and the
//! `tpm2-tools` `-T` syntax `name:config`).
//!
//! Accepted forms:
//! - `device:/dev/tpmrm0` (a character device; the kernel's resource manager is `tpmrm0`),
//! - `swtpm:host=127.0.0.1,port=2321` (swtpm's TCP server; control channel is `port + 1`),
//! - `mssim:host=127.0.0.1,port=2321` (Microsoft's simulator protocol),
//! - `tabrmd:bus_name=com.intel.tss2.Tabrmd,bus_type=system` (the access broker over D-Bus).
//!
//! Parsing is strict: an unknown transport, a relative device path, an unknown key, a
//! repeated key or a port that is not a number from 1 to 65535 is a [`TctiError`], never a
//! silently used default.

use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Why a TCTI string is not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TctiError {
    #[error(
        "empty TCTI string (expected e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321)"
    )]
    Empty,
    #[error("unknown TCTI {name:?} (known: device, swtpm, mssim, tabrmd)")]
    UnknownTransport { name: String },
    #[error("device TCTI needs an absolute path, e.g. device:/dev/tpmrm0 (got {path:?})")]
    DevicePath { path: String },
    #[error("{transport} TCTI: unknown or repeated key {key:?} (known: {known})")]
    BadKey {
        transport: &'static str,
        key: String,
        known: &'static str,
    },
    #[error("{transport} TCTI: {key} has no value (expected key=value)")]
    MissingValue {
        transport: &'static str,
        key: String,
    },
    #[error("{transport} TCTI: port {value:?} is not a number from 1 to 65535")]
    BadPort {
        transport: &'static str,
        value: String,
    },
    #[error("tabrmd TCTI: bus_type {value:?} is neither system nor session")]
    BadBusType { value: String },
    #[error("TCTI {tcti:?} was rejected by the TSS library")]
    Rejected { tcti: String },
}

/// The kind of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Device,
    Swtpm,
    Mssim,
    Tabrmd,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Device => "device",
            Transport::Swtpm => "swtpm",
            Transport::Mssim => "mssim",
            Transport::Tabrmd => "tabrmd",
        }
    }
}

/// A validated TCTI string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tcti {
    transport: Transport,
    text: String,
}

impl Tcti {
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The TCTI string as given (validated).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The device path of a `device:` TCTI.
    pub fn device_path(&self) -> Option<&str> {
        match self.transport {
            Transport::Device => self.text.split_once(':').map(|(_, p)| p),
            _ => None,
        }
    }

    /// The TSS library's form of this TCTI.
    pub(crate) fn name_conf(&self) -> Result<tss_esapi::tcti_ldr::TctiNameConf, TctiError> {
        tss_esapi::tcti_ldr::TctiNameConf::from_str(&self.text).map_err(|_| TctiError::Rejected {
            tcti: self.text.clone(),
        })
    }
}

impl fmt::Display for Tcti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Tcti {
    type Err = TctiError;

    fn from_str(text: &str) -> Result<Self, TctiError> {
        if text.is_empty() {
            return Err(TctiError::Empty);
        }
        let (name, config) = text.split_once(':').unwrap_or((text, ""));
        let transport = match name {
            "device" => Transport::Device,
            "swtpm" => Transport::Swtpm,
            "mssim" => Transport::Mssim,
            "tabrmd" => Transport::Tabrmd,
            _ => {
                return Err(TctiError::UnknownTransport {
                    name: name.to_string(),
                })
            }
        };
        match transport {
            Transport::Device => {
                if !config.starts_with('/') || config.contains(',') {
                    return Err(TctiError::DevicePath {
                        path: config.to_string(),
                    });
                }
            }
            Transport::Swtpm | Transport::Mssim => {
                check_pairs(transport.name(), config, &["host", "port"], |key, value| {
                    if key == "port" && !matches!(value.parse::<u16>(), Ok(p) if p > 0) {
                        return Err(TctiError::BadPort {
                            transport: transport.name(),
                            value: value.to_string(),
                        });
                    }
                    Ok(())
                })?;
            }
            Transport::Tabrmd => {
                check_pairs("tabrmd", config, &["bus_name", "bus_type"], |key, value| {
                    if key == "bus_type" && value != "system" && value != "session" {
                        return Err(TctiError::BadBusType {
                            value: value.to_string(),
                        });
                    }
                    Ok(())
                })?;
            }
        }
        Ok(Tcti {
            transport,
            text: text.to_string(),
        })
    }
}

/// Checks `k=v,k=v`: every key known and given once, every value non-empty and accepted by
/// `check`.
fn check_pairs(
    transport: &'static str,
    config: &str,
    known: &[&'static str],
    check: impl Fn(&str, &str) -> Result<(), TctiError>,
) -> Result<(), TctiError> {
    if config.is_empty() {
        return Ok(());
    }
    let known_list = match transport {
        "tabrmd" => "bus_name, bus_type",
        _ => "host, port",
    };
    let mut seen: Vec<&str> = Vec::new();
    for pair in config.split(',') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| TctiError::MissingValue {
                transport,
                key: pair.to_string(),
            })?;
        if !known.contains(&key) || seen.contains(&key) {
            return Err(TctiError::BadKey {
                transport,
                key: key.to_string(),
                known: known_list,
            });
        }
        if value.is_empty() {
            return Err(TctiError::MissingValue {
                transport,
                key: key.to_string(),
            });
        }
        check(key, value)?;
        seen.push(key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        for t in [
            "device:/dev/tpmrm0",
            "swtpm:host=127.0.0.1,port=2321",
            "mssim:port=2321,host=localhost",
            "swtpm",
            "tabrmd:bus_name=com.intel.tss2.Tabrmd,bus_type=session",
        ] {
            let tcti: Tcti = t.parse().unwrap();
            assert_eq!(tcti.as_str(), t);
            tcti.name_conf().unwrap();
        }
    }

    #[test]
    fn rejects_bad_strings_with_typed_errors() {
        assert_eq!("".parse::<Tcti>(), Err(TctiError::Empty));
        assert!(matches!(
            "tpm:/dev/tpm0".parse::<Tcti>(),
            Err(TctiError::UnknownTransport { .. })
        ));
        assert!(matches!(
            "device:tpmrm0".parse::<Tcti>(),
            Err(TctiError::DevicePath { .. })
        ));
        assert!(matches!(
            "device".parse::<Tcti>(),
            Err(TctiError::DevicePath { .. })
        ));
        assert!(matches!(
            "swtpm:host=127.0.0.1,port=99999".parse::<Tcti>(),
            Err(TctiError::BadPort { .. })
        ));
        assert!(matches!(
            "swtpm:host=a,host=b".parse::<Tcti>(),
            Err(TctiError::BadKey { .. })
        ));
        assert!(matches!(
            "mssim:hots=x".parse::<Tcti>(),
            Err(TctiError::BadKey { .. })
        ));
        assert!(matches!(
            "mssim:port".parse::<Tcti>(),
            Err(TctiError::MissingValue { .. })
        ));
        assert!(matches!(
            "tabrmd:bus_type=user".parse::<Tcti>(),
            Err(TctiError::BadBusType { .. })
        ));
    }
}
