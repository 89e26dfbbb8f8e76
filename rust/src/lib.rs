//! smmc-core: the sans-IO DLMS/COSEM core of smmc-gateway.
//!
//! Bytes in, events out: nothing here opens a socket, sleeps, reads a clock or
//! logs. The Python shell (`smmc_gateway`) owns IO and time. The pyo3 layer
//! lives in [`py`] and is compiled only with the `python` feature; it does
//! conversion and error mapping only.

#![forbid(unsafe_code)]

pub mod apdu;
pub mod assoc;
pub mod axdr;
pub mod axdr_descriptors;
mod axdr_skip;
pub mod cosem_datetime;
pub mod crc;
pub mod error;
pub mod hdlc;
pub mod profile;
pub mod security;
pub mod wrapper;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, ErrorKind, Layer, Result};
