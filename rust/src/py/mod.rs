//! The pyo3 face of the core: conversion and error mapping only, no protocol
//! logic. Each submodule registers the classes and functions of one layer.

use pyo3::prelude::*;

mod apdu;
mod assoc;
mod axdr;
mod errors;
mod hdlc;
mod link_events;
mod notification;
mod profile;
mod security;

pub use errors::to_py_err;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    hdlc::register(m)?;
    link_events::register(m)?;
    axdr::register(m)?;
    profile::register(m)?;
    apdu::register(m)?;
    security::register(m)?;
    assoc::register(m)?;
    notification::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
