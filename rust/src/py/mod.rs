//! The pyo3 face of the core: conversion and error mapping only, no protocol
//! logic. Each submodule registers the classes and functions of one layer.

use pyo3::prelude::*;

mod errors;

pub use errors::to_py_err;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
